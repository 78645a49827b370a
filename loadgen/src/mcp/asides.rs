//! What a server sends besides the answer to a request: notifications (progress, log
//! messages) and server-to-client requests (roots, sampling, elicitation, ping), counted by
//! kind. A stream that carries them before its result is a working server, not a broken one;
//! the counts show what it cost.

/// One kind of message that is not the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aside {
    Progress,
    Log,
    OtherNotification,
    Roots,
    Sampling,
    Elicitation,
    Ping,
    OtherRequest,
}

impl Aside {
    pub const ALL: [Aside; 8] = [
        Aside::Progress,
        Aside::Log,
        Aside::OtherNotification,
        Aside::Roots,
        Aside::Sampling,
        Aside::Elicitation,
        Aside::Ping,
        Aside::OtherRequest,
    ];

    /// The name in the run file: the method, or what the rest are.
    pub fn name(self) -> &'static str {
        match self {
            Aside::Progress => "notifications/progress",
            Aside::Log => "notifications/message",
            Aside::OtherNotification => "other notifications",
            Aside::Roots => "roots/list",
            Aside::Sampling => "sampling/createMessage",
            Aside::Elicitation => "elicitation/create",
            Aside::Ping => "ping",
            Aside::OtherRequest => "other requests",
        }
    }

    /// The kind of a notification of `method`.
    pub fn of_notification(method: &str) -> Aside {
        match method {
            "notifications/progress" => Aside::Progress,
            "notifications/message" => Aside::Log,
            _ => Aside::OtherNotification,
        }
    }

    /// The kind of a server-to-client request of `method`.
    pub fn of_request(method: &str) -> Aside {
        match method {
            "roots/list" => Aside::Roots,
            "sampling/createMessage" => Aside::Sampling,
            "elicitation/create" => Aside::Elicitation,
            "ping" => Aside::Ping,
            _ => Aside::OtherRequest,
        }
    }
}

/// Counts of [`Aside`]s, small enough to travel with every call's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Asides([u32; Aside::ALL.len()]);

impl Asides {
    pub fn add(&mut self, kind: Aside) {
        self.0[kind as usize] = self.0[kind as usize].saturating_add(1);
    }

    pub fn get(&self, kind: Aside) -> u32 {
        self.0[kind as usize]
    }

    /// The kinds seen, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Aside, u32)> + '_ {
        Aside::ALL
            .into_iter()
            .map(|k| (k, self.get(k)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind() {
        let mut a = Asides::default();
        assert_eq!(a.iter().count(), 0);
        a.add(Aside::of_notification("notifications/progress"));
        a.add(Aside::of_notification("notifications/progress"));
        a.add(Aside::of_request("roots/list"));
        a.add(Aside::of_request("x/y"));
        assert_eq!(a.get(Aside::Progress), 2);
        let seen: Vec<_> = a.iter().map(|(k, n)| (k.name(), n)).collect();
        assert_eq!(
            seen,
            [
                ("notifications/progress", 2),
                ("roots/list", 1),
                ("other requests", 1)
            ]
        );
    }
}
