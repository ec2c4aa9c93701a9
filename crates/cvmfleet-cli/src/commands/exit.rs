//! The exit codes, a documented contract (README, "Exit codes"): every command ends in one of
//! these, mapped to a process exit code in one place.

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: done; no changes pending; no drift; valid.
    Success,
    /// 1: an error, a refusal, a cancellation, a partial apply, or a usage error.
    Failure,
    /// 2: `plan` has changes pending, `drift` found drift (Terraform's `-detailed-exitcode`).
    Pending,
    /// 130: a second Ctrl-C stopped the run between API calls (128 + SIGINT).
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Pending => 2,
            Exit::Interrupted => 130,
        }
    }

    /// Ends the process now with this code (a second Ctrl-C).
    pub(crate) fn now(self) -> ! {
        std::process::exit(i32::from(self.code()))
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let codes: Vec<u8> = [Exit::Success, Exit::Failure, Exit::Pending, Exit::Interrupted]
            .iter()
            .map(|e| e.code())
            .collect();
        assert_eq!(codes, [0, 1, 2, 130]);
    }
}
