//! An error's chain of causes (`source()` after `source()`): written out as one line for
//! status displays, or searched for the first cause of one type, e.g. a body deadline behind
//! axum's "failed to buffer the body", or hyper's closed connection behind reqwest's "error
//! sending request".

use std::error::Error;

/// An error with its causes, `outer: inner: innermost`, as one line.
pub(crate) fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The first error of type `T` in `error`'s chain, `error` itself included.
pub(crate) fn find<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_chain_is_one_line_and_searched_to_its_end() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
        assert!(find::<std::io::Error>(&e).is_some());
        assert!(find::<Outer>(&e).is_some());
        assert!(find::<std::fmt::Error>(&e).is_none());
    }
}
