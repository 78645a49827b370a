//! Whether a container image reference is pinned: the judgement behind `docker-image-latest`
//! and `k8s-image-latest` alike.

/// Why an image reference is not pinned, if it is not: untagged or `latest`, no digest.
pub(super) fn image_tag_problem(image: &str) -> Option<&'static str> {
    if image.contains('@') {
        return None;
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    match last_segment.split_once(':') {
        None => Some("has no tag (defaults to `latest`)"),
        Some((_, tag)) if tag.eq_ignore_ascii_case("latest") => Some("uses the `latest` tag"),
        Some((_, "")) => Some("has an empty tag"),
        Some(_) => None,
    }
}
