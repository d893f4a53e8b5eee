//! The hop count (confMAX_HOP, docs/sendmail-compat.md §7): a message that has passed too
//! many MTAs is accepted and then bounced by the queue runner, as sendmail does, so that a
//! loop ends with a notice rather than a silent drop.

use crate::queue::{Envelope, RcptState};
use crate::smtp::proto::count_hops;

/// Marks every recipient failed if `head` (our Received: included) counts more than
/// `max_hops` hops. Returns the count.
pub fn check(head: &[u8], max_hops: u32, envelope: &mut Envelope) -> usize {
    let hops = count_hops(head);
    if hops > max_hops as usize {
        let text = format!("554 5.4.6 Too many hops {hops} ({max_hops} max)");
        for r in &mut envelope.recipients {
            r.state = RcptState::Failed;
            r.status = Some(text.clone());
        }
        envelope.status_message = Some(text);
    }
    hops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Recipient;

    #[test]
    fn past_the_limit_every_recipient_fails() {
        let mut env = Envelope::new("a@b.example", vec![Recipient::new("c@d.example")]);
        let head = b"Received: 1\nReceived: 2\nReceived: 3\n\nbody\n";
        assert_eq!(check(head, 3, &mut env), 3);
        assert_eq!(env.recipients[0].state, RcptState::Pending);
        assert_eq!(check(head, 2, &mut env), 3);
        assert_eq!(env.recipients[0].state, RcptState::Failed);
        assert_eq!(
            env.status_message.as_deref(),
            Some("554 5.4.6 Too many hops 3 (2 max)")
        );
    }
}
