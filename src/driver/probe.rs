//! The file-system probe the checker uses: existence checks, CSV headers and schema inference
//! (which each connector implements: `connectors::csv::infer`, `connectors::jsonl::infer`).

use crate::check::Probe;
use crate::job::Options;
use crate::types::RowType;

pub struct FsProbe;

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The first existing file of a path or glob.
fn first_file(path: &str) -> Option<String> {
    if !is_glob(path) {
        return std::path::Path::new(path)
            .is_file()
            .then(|| path.to_string());
    }
    let mut matches: Vec<String> = glob::glob(path)
        .ok()?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    matches.sort();
    matches.into_iter().next()
}

impl Probe for FsProbe {
    fn exists(&self, path: &str) -> bool {
        first_file(path).is_some()
    }

    fn csv_header(&self, path: &str, delimiter: u8) -> Result<Vec<String>, String> {
        let file = first_file(path).ok_or_else(|| "no such file".to_string())?;
        let mut r = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_path(&file)
            .map_err(|e| e.to_string())?;
        let mut rec = csv::ByteRecord::new();
        if !r.read_byte_record(&mut rec).map_err(|e| e.to_string())? {
            return Err(crate::connectors::csv::EMPTY.into());
        }
        crate::connectors::csv::header_names(&rec)
    }

    fn infer(&self, connector: &str, path: &str, options: &Options) -> Result<RowType, String> {
        let file = first_file(path).ok_or_else(|| "no such file".to_string())?;
        match connector {
            "csv" => crate::connectors::csv::infer::infer(&file, options),
            "jsonl" => crate::connectors::jsonl::infer::infer(&file, options),
            other => Err(format!("cannot infer a schema for `{other}`")),
        }
    }
}
