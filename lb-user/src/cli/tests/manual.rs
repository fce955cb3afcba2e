//! The completion scripts and the man page cover both halves: every lbctl
//! word and every ipvsadm long option of the option table.

use clap::CommandFactory;

use super::clap_words::WORDS;
use super::*;
use crate::cli::manual::reference;
use crate::cli::options::SPECS;
use crate::cli::words::Words;

/// ipvsadm's long options, once each (`--list` is in the table twice).
fn long_options() -> Vec<&'static str> {
    let mut longs: Vec<&str> = SPECS.iter().map(|s| s.long).collect();
    longs.dedup();
    longs
}

#[test]
fn reference_command_is_the_table_and_the_words() {
    let cmd = reference();
    let words: Vec<&str> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name())
        .collect();
    assert_eq!(words, WORDS);
    let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    assert_eq!(longs, long_options());
    assert_eq!(longs.len(), 57);
    let list = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some("list"))
        .unwrap();
    assert_eq!(list.get_short(), Some('L'));
    assert_eq!(list.get_visible_short_aliases(), Some(vec!['l']));
    for s in SPECS {
        let a = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(s.long))
            .unwrap();
        assert!(!s.help.is_empty(), "--{} has no help", s.long);
        assert_eq!(
            a.get_num_args().unwrap().takes_values(),
            !s.value.is_empty(),
            "--{}",
            s.long
        );
    }
    // clap's own checks of the definition (duplicate names and the like).
    reference().debug_assert();
    Words::command().debug_assert();
}

#[test]
fn completions_cover_both_halves() {
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let script = completions(shell);
        for w in WORDS {
            let found = match shell {
                Shell::Bash => {
                    script.contains(&format!(" {w} ")) || script.contains(&format!(" {w}\""))
                }
                Shell::Zsh => script.contains(&format!("'{w}:")),
                Shell::Fish => script.contains(&format!("-a \"{w}\"")),
            };
            assert!(found, "{shell:?} completion lacks the word {w}");
        }
        for long in long_options() {
            let found = match shell {
                Shell::Bash => {
                    script.contains(&format!(" --{long} "))
                        || script.contains(&format!(" --{long}\""))
                }
                Shell::Zsh => {
                    script.contains(&format!("'--{long}["))
                        || script.contains(&format!("'--{long}=["))
                }
                Shell::Fish => script.contains(&format!("-l {long} ")),
            };
            assert!(found, "{shell:?} completion lacks --{long}");
        }
        assert!(
            !script.contains("manpage"),
            "{shell:?} completion shows the hidden word"
        );
    }
}

#[test]
fn man_page_covers_both_halves() {
    let roff = manpage();
    assert!(roff.contains(".TH lbctl 8 "), "{}", &roff[..200]);
    // roff writes `-` as `\-`.
    let text = roff.replace("\\-", "-");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "\"LBCTL WORDS\"",
        "PRIVILEGES",
        "\"EXIT STATUS\"",
    ] {
        assert!(
            text.contains(&format!(".SH {section}\n")),
            "no {section} section"
        );
    }
    for w in WORDS {
        assert!(
            text.contains(&format!(".SS {w}\n")),
            "man page lacks the word {w}"
        );
        assert!(
            text.contains(&format!("lbctl {w}")),
            "man page lacks lbctl {w}'s synopsis"
        );
    }
    for long in long_options() {
        assert!(
            text.contains(&format!("--{long}")),
            "man page lacks --{long}"
        );
    }
    // The words' own options are there too.
    for opt in [
        "--mode",
        "--conns",
        "--templates",
        "--reset",
        "--foreground",
        "--metrics-public",
    ] {
        assert!(text.contains(opt), "man page lacks {opt}");
    }
    // The synopsis is the usage's.
    assert!(
        text.contains("\\fBlbctl\\fR -A|E virtual-service [-s scheduler]"),
        "synopsis"
    );
    assert!(
        !text.contains(".SS manpage"),
        "the hidden word is not documented"
    );
}
