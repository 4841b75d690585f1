//! The `tsv` connector, added without touching the checker: its own folder describes it, one
//! line registers it. These tests run the real binary on real files.

mod common;

use std::path::Path;

fn flow(dir: &Path, args: &[&str]) -> (i32, String, String) {
    common::flow_in(dir, args)
}

fn setup(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("people.tsv"),
        "id\tname\tage\n1\tAda\t36\n2\t\"Tab\there\"\t41\n3\tBo\t\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("job.flow"), script).unwrap();
    dir
}

#[test]
fn tsv_source_is_inferred_and_written_back_as_tsv() {
    let dir = setup(
        "source people = tsv(\"people.tsv\")\n\
         people | filter id > 1 | map { id, name, age } | sink tsv(\"out.tsv\")\n",
    );
    let (code, types, err) = flow(dir.path(), &["check", "--types", "job.flow"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        types.contains("source people: { id: int, name: str, age: int? }"),
        "{types}"
    );
    let (code, _, err) = flow(dir.path(), &["run", "-q", "--threads", "2", "job.flow"]);
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<String> = std::fs::read_to_string(dir.path().join("out.tsv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.remove(0), "id\tname\tage");
    lines.sort();
    assert_eq!(lines, vec!["2\t\"Tab\there\"\t41", "3\tBo\t"]);
}

#[test]
fn tsv_to_csv_keeps_a_tab_inside_a_field() {
    let dir = setup("source people = tsv(\"people.tsv\")\npeople | sink csv(\"out.csv\")\n");
    let (code, _, err) = flow(dir.path(), &["run", "-q", "--threads", "1", "job.flow"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(text, "id,name,age\n1,Ada,36\n2,Tab\there,41\n3,Bo,\n");
}

#[test]
fn tsv_options_are_validated_from_its_own_description() {
    let dir =
        setup("source people = tsv(\"people.tsv\", delimiter: \";\")\npeople | sink stdout()\n");
    let (code, _, err) = flow(dir.path(), &["check", "job.flow"]);
    assert_eq!(code, 1);
    assert!(err.contains("`tsv` has no option `delimiter`"), "{err}");
    assert!(
        err.contains("its options are: header, on_error, max_errors"),
        "{err}"
    );
}

#[test]
fn a_declared_schema_is_checked_against_the_tsv_header() {
    let dir = setup(
        "schema P { id: int, nam: str }\nsource people: P = tsv(\"people.tsv\")\npeople | sink stdout()\n",
    );
    let (code, _, err) = flow(dir.path(), &["check", "job.flow"]);
    assert_eq!(code, 1);
    assert!(err.contains("[E0035]"), "{err}");
    assert!(
        err.contains("column `nam` of the schema is not in the header of people.tsv"),
        "{err}"
    );
    assert!(err.contains("did you mean `name`?"), "{err}");
}
