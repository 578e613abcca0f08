//! The switch behind an engine's planted bugs — bugs put in on purpose to
//! prove the crash campaign finds them: which one is on, and the records an
//! "acknowledged before the log" bug holds back. An engine keeps a switch
//! only in builds that can plant (`cfg(any(test, feature = "planted-bugs"))`
//! in its own crate); a normal build has none, and its `planted(bug)` is
//! false.

use parking_lot::Mutex;

#[derive(Debug)]
pub struct PlantedSwitch<B> {
    state: Mutex<(Option<B>, Vec<Vec<u8>>)>,
}

impl<B: Copy + PartialEq> PlantedSwitch<B> {
    pub fn new(bug: Option<B>) -> Self {
        PlantedSwitch {
            state: Mutex::new((bug, Vec::new())),
        }
    }

    /// Switches `bug` on from now on.
    pub fn plant(&self, bug: B) {
        self.state.lock().0 = Some(bug);
    }

    pub fn is(&self, bug: B) -> bool {
        self.state.lock().0 == Some(bug)
    }

    /// Holds `records` back and hands over those held before: a group's
    /// records wait for the next group's write.
    pub fn hold_back(&self, records: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        std::mem::replace(&mut self.state.lock().1, records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_bug_is_on_and_held_records_come_out_one_write_late() {
        let switch = PlantedSwitch::new(None);
        assert!(!switch.is(1));
        switch.plant(1);
        assert!(switch.is(1) && !switch.is(2));
        assert!(switch.hold_back(vec![b"a".to_vec()]).is_empty());
        assert_eq!(switch.hold_back(vec![b"b".to_vec()]), vec![b"a".to_vec()]);
    }
}
