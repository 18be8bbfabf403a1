//! Stopping on a signal: SIGINT (Ctrl-C), SIGTERM (what Slurm and most schedulers send at
//! a time limit) and SIGHUP (a closed terminal) ask a run to stop after its current step
//! with a checkpoint; a second signal ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

/// A signal that asks a run to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// A scheduler's or `kill`'s polite request.
    Terminate,
    /// The controlling terminal went away.
    Hangup,
}

impl Signal {
    const ALL: [Signal; 3] = [Signal::Interrupt, Signal::Terminate, Signal::Hangup];

    /// The POSIX signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hangup => 1,
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }

    /// The name a shell shows (`SIGTERM`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }

    /// The conventional exit status of a process ended by this signal, 128 + its number.
    pub fn exit_code(self) -> u8 {
        128 + self.number() as u8
    }

    fn from_number(n: i32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == n)
    }
}

/// A request to stop, set by a signal handler (or a test) and polled by the training loop
/// between steps.
#[derive(Debug, Default)]
pub struct Stop(AtomicI32);

impl Stop {
    /// No stop requested.
    pub const fn new() -> Self {
        Stop(AtomicI32::new(0))
    }

    /// Asks for a stop as if `signal` had arrived; returns the signal asked before, if any.
    pub fn request(&self, signal: Signal) -> Option<Signal> {
        Signal::from_number(self.0.swap(signal.number(), Ordering::SeqCst))
    }

    /// The signal that asked for a stop, if one did.
    pub fn requested(&self) -> Option<Signal> {
        Signal::from_number(self.0.load(Ordering::SeqCst))
    }
}

/// The process's stop request, set by the handlers [`install`] sets up.
pub static STOP: Stop = Stop::new();

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that set [`STOP`] and say so on
/// stderr; a second signal exits at once with 128 + its number, without a checkpoint.
/// Returns [`STOP`]. A no-op (returning [`STOP`]) where signals are not POSIX.
pub fn install() -> &'static Stop {
    #[cfg(unix)]
    for s in Signal::ALL {
        // SAFETY: the handler only touches an atomic and calls the async-signal-safe
        // `write` and `_exit`.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(s.number(), &action, std::ptr::null_mut());
        }
    }
    &STOP
}

#[cfg(unix)]
extern "C" fn on_signal(number: libc::c_int) {
    let Some(signal) = Signal::from_number(number) else {
        return;
    };
    let say = |text: &[u8]| {
        // SAFETY: `write` is async-signal-safe; a failed write is ignored.
        unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
    };
    if STOP.request(signal).is_some() {
        say(b"\nsecond signal: exiting without a checkpoint\n");
        // SAFETY: `_exit` is async-signal-safe and ends the process at once.
        unsafe { libc::_exit(i32::from(signal.exit_code())) };
    }
    say(match signal {
        Signal::Interrupt => b"\nCtrl-C: stopping after this step and writing a checkpoint\n",
        Signal::Terminate => b"\nSIGTERM: stopping after this step and writing a checkpoint\n",
        Signal::Hangup => b"\nSIGHUP: stopping after this step and writing a checkpoint\n",
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_remembers_the_signal_and_its_exit_code() {
        let stop = Stop::new();
        assert_eq!(stop.requested(), None);
        assert_eq!(stop.request(Signal::Terminate), None);
        assert_eq!(stop.requested(), Some(Signal::Terminate));
        assert_eq!(stop.request(Signal::Hangup), Some(Signal::Terminate));
        assert_eq!(
            Signal::ALL.map(Signal::exit_code),
            [130, 143, 129],
            "128 + the signal number"
        );
    }
}
