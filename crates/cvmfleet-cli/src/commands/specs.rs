//! Loading specs for the commands that act on them: the same diagnostics as `validate`.

use std::path::PathBuf;

use cvmfleet_plan::DesiredFleet;

/// Default spec location when no path is given.
pub(crate) const DEFAULT_SPEC_DIR: &str = "specs";

/// Loads and validates specs for the project `given` (else the specs' own, else the default);
/// on error prints every diagnostic to stderr and returns `None`.
pub(crate) fn load(paths: &[PathBuf], given: Option<&str>) -> anyhow::Result<Option<Vec<DesiredFleet>>> {
    let paths: Vec<PathBuf> =
        if paths.is_empty() { vec![PathBuf::from(DEFAULT_SPEC_DIR)] } else { paths.to_vec() };
    match cvmfleet_spec::load_paths(&paths) {
        Ok(specs) => {
            let project = cvmfleet_plan::desired::project_of(given, &specs);
            Ok(Some(cvmfleet_plan::desired::from_spec(&specs, &project)))
        }
        Err(diagnostics) => {
            super::validate::print_diagnostics(&diagnostics)?;
            anstream::eprintln!("nothing was planned: the specs are invalid");
            Ok(None)
        }
    }
}
