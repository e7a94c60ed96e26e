//! Minimal command line option parsing (`--flag`, `--flag value`, `--flag=value`).

use std::collections::VecDeque;

use crate::Result;

/// The options of one task, consumed flag by flag.
pub(crate) struct Args {
    items: VecDeque<String>,
    /// Value given as `--flag=value`, not yet taken by [`Args::value`].
    inline: Option<String>,
}

impl Args {
    /// The next `--flag`, or `None` at the end.
    pub(crate) fn next_flag(&mut self) -> Result<Option<String>> {
        if let Some(value) = self.inline.take() {
            return Err(format!("unexpected value `{value}`"));
        }
        let Some(arg) = self.items.pop_front() else {
            return Ok(None);
        };
        if !arg.starts_with("--") {
            return Err(format!("unexpected argument `{arg}`"));
        }
        Ok(Some(match arg.split_once('=') {
            Some((flag, value)) => {
                self.inline = Some(value.to_owned());
                flag.to_owned()
            }
            None => arg,
        }))
    }

    /// The value of `flag`, which [`Args::next_flag`] just returned.
    pub(crate) fn value(&mut self, flag: &str) -> Result<String> {
        self.inline
            .take()
            .or_else(|| self.items.pop_front())
            .ok_or_else(|| format!("{flag} needs a value"))
    }
}

/// Parses `args` with a task's option parser.
pub(crate) fn parse<T>(parser: impl FnOnce(&mut Args) -> Result<T>, args: &[String]) -> Result<T> {
    parser(&mut Args {
        items: args.iter().cloned().collect(),
        inline: None,
    })
}

/// Error for a flag the task does not know.
pub(crate) fn unknown(flag: &str) -> String {
    format!("unknown option `{flag}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Result<Vec<(String, Option<String>)>> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(
            |a| {
                let mut out = Vec::new();
                while let Some(flag) = a.next_flag()? {
                    let value = (flag == "--v").then(|| a.value(&flag)).transpose()?;
                    out.push((flag, value));
                }
                Ok(out)
            },
            &args,
        )
    }

    #[test]
    fn flags_and_values() {
        let got = flags(&["--a", "--v", "1", "--v=2"]).unwrap();
        let want = [("--a", None), ("--v", Some("1")), ("--v", Some("2"))];
        let want: Vec<_> = want
            .iter()
            .map(|(f, v)| (f.to_string(), v.map(String::from)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn errors() {
        assert!(flags(&["--v"]).is_err());
        assert!(flags(&["--a=1"]).is_err());
        assert!(flags(&["a"]).is_err());
    }
}
