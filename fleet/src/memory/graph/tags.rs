//! Why an element exists: the set of adds (tags) that put it there and that no delete has
//! removed yet. On one node an element usually has one tag; when several nodes add the same
//! element concurrently it gets one per add, and a delete removes only the tags its writer
//! had seen, so the element lives while any tag is left (add wins across nodes too).
//!
//! A tag knows the local version that applied it (what a local delete's `seen` compares
//! with), the add's stamp at its origin (what orders observations the same way on every
//! node) and, for adds written on another node, that node and the version there (what a
//! remote delete names).

use std::{cmp::Ordering, sync::Arc};

use smallvec::SmallVec;

use crate::memory::layout::{TagFile, TagsFile};

/// An add written on another node: the node and its version there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dot {
    pub node: Arc<str>,
    pub version: u64,
}

/// One add an element owes its existence to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    /// Version of the record that applied the add here.
    pub local: u64,
    /// The add's hybrid logical clock stamp where it was written (0 before stamps existed).
    pub hlc: u64,
    /// Where the add was written, if not on this node (then its version there is `local`).
    pub from: Option<Arc<Dot>>,
    /// Which of the write's observations this is (counted over the whole write): orders the
    /// observations one write added, the same way on every node.
    pub index: u32,
}

impl Tag {
    /// An add written on this node.
    pub(crate) fn here(local: u64, hlc: u64) -> Tag {
        Tag {
            local,
            hlc,
            from: None,
            index: 0,
        }
    }

    /// The same add, as its write's `index`th observation.
    pub(crate) fn at(&self, index: u32) -> Tag {
        Tag {
            index,
            ..self.clone()
        }
    }

    /// The add's origin, with `me` standing for this node.
    pub(crate) fn origin<'a>(&'a self, me: &'a str) -> (&'a str, u64) {
        match &self.from {
            Some(d) => (&d.node, d.version),
            None => (me, self.local),
        }
    }

    /// Order of elements across nodes: by stamp, then node, then version there, then place
    /// in the write.
    pub(crate) fn cmp_key(&self, other: &Tag, me: &str) -> Ordering {
        let (an, av) = self.origin(me);
        let (bn, bv) = other.origin(me);
        (self.hlc, an, av, self.index).cmp(&(other.hlc, bn, bv, other.index))
    }
}

/// The tags of one element; empty means the element is gone.
pub(crate) type Tags = SmallVec<[Tag; 1]>;

/// One tag, as most elements have.
pub(crate) fn one(tag: Tag) -> Tags {
    smallvec::smallvec![tag]
}

/// The smallest tag of a set: the element's place among its siblings.
pub(crate) fn first<'a>(tags: &'a Tags, me: &str) -> Option<&'a Tag> {
    tags.iter().min_by(|a, b| a.cmp_key(b, me))
}

/// The newest local version among the tags (what a future-tag check compares).
pub(crate) fn newest(tags: &Tags) -> u64 {
    tags.iter().map(|t| t.local).max().unwrap_or(0)
}

/// Tags in the archive's form: a bare version for the classic single local tag without a
/// stamp, else a list (the place in the write only when not 0).
pub(crate) fn to_file(tags: &Tags) -> TagsFile {
    match tags.as_slice() {
        [t] if t.from.is_none() && t.hlc == 0 && t.index == 0 => TagsFile::Version(t.local),
        _ => TagsFile::Tags(
            tags.iter()
                .map(|t| match (&t.from, t.index) {
                    (None, 0) => TagFile::Here(t.local, t.hlc),
                    (None, i) => TagFile::HereAt(t.local, t.hlc, i),
                    (Some(d), 0) => TagFile::There(t.local, t.hlc, d.node.to_string(), d.version),
                    (Some(d), i) => {
                        TagFile::ThereAt(t.local, t.hlc, d.node.to_string(), d.version, i)
                    }
                })
                .collect(),
        ),
    }
}

/// Tags read from the archive; `None` if the list is empty (an element without tags cannot
/// exist).
pub(crate) fn from_file(f: &TagsFile) -> Option<Tags> {
    let tags: Tags = match f {
        TagsFile::Version(v) => one(Tag::here(*v, 0)),
        TagsFile::Tags(list) => list
            .iter()
            .map(|t| match t {
                TagFile::Here(local, hlc) => Tag::here(*local, *hlc),
                TagFile::HereAt(local, hlc, index) => Tag::here(*local, *hlc).at(*index),
                TagFile::There(local, hlc, node, version)
                | TagFile::ThereAt(local, hlc, node, version, _) => Tag {
                    local: *local,
                    hlc: *hlc,
                    from: Some(Arc::new(Dot {
                        node: Arc::from(node.as_str()),
                        version: *version,
                    })),
                    index: match t {
                        TagFile::ThereAt(.., index) => *index,
                        _ => 0,
                    },
                },
            })
            .collect(),
    };
    (!tags.is_empty()).then_some(tags)
}
