fn main() {
    println!("cargo:rerun-if-changed=grammar/flow.lalrpop");
    if let Err(e) = lalrpop::Configuration::new()
        .set_in_dir("grammar")
        .process()
    {
        eprintln!("lalrpop failed: {e}");
        std::process::exit(1);
    }
}
