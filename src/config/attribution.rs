//! A source's `attribution:` key: where its records keep tenant, feature, user and workflow.
//! Each field takes one place or a list tried in order; the place's kind must be one the
//! source's format has (a `span:` attribute only in OpenTelemetry traces, a `tag:` only where
//! records carry tags). See `source::mapping` for how the places are read.

use super::Problems;
use super::units::OneOrMany;
use crate::source::formats::Format;
use crate::source::mapping::{Locator, Mapping, parse_field};
use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAttribution {
    pub tenant: Option<Spanned<OneOrMany>>,
    pub feature: Option<Spanned<OneOrMany>>,
    pub user: Option<Spanned<OneOrMany>>,
    pub workflow: Option<Spanned<OneOrMany>>,
}

/// The mapping of a source read in `format`; each bad place is reported under
/// `{prefix}.attribution.{field}` at its line.
pub(super) fn validate(
    raw: &RawAttribution,
    format: Format,
    prefix: &str,
    p: &mut Problems<'_>,
) -> Mapping {
    let mut mapping = Mapping::default();
    for (name, places) in [
        ("tenant", &raw.tenant),
        ("feature", &raw.feature),
        ("user", &raw.user),
        ("workflow", &raw.workflow),
    ] {
        let Some(places) = places else { continue };
        let field = format!("{prefix}.attribution.{name}");
        let dim = parse_field(name).expect("the four fields are attribution fields");
        let texts = match &places.value {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        };
        if texts.is_empty() {
            p.at(places, &field, "name at least one place");
            continue;
        }
        let mut locators: Vec<Locator> = Vec::new();
        for text in texts {
            match Locator::parse(&text) {
                Ok(l) if !format.offers(l.kind()) => p.at(
                    places,
                    &field,
                    format!(
                        "`{text}`: a {} place is not in {} records ({})",
                        l.kind(),
                        format.name(),
                        offered(format)
                    ),
                ),
                Ok(l) => locators.push(l),
                Err(e) => p.at(places, &field, e),
            }
        }
        mapping.set(dim, locators);
    }
    mapping
}

fn offered(format: Format) -> &'static str {
    match format {
        Format::Otel => "use a field path, span:ATTR or resource:ATTR",
        f if f.offers("tag") => "use a field path or tag:NAME",
        _ => "use a field path",
    }
}
