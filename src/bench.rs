//! `spendpager bench`: to be written.

use std::path::Path;

pub fn run(_quick: bool, _dir: Option<&Path>, _out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
