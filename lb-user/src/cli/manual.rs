//! lbctl's completion scripts and its lbctl(8) man page, both made from one
//! clap `Command`: lbctl's words (`words`) with ipvsadm's options, which come
//! from ipvsadm's option table (`options`). Parsing never goes through it.

use clap::CommandFactory;
use clap_mangen::Man;
use roff::{Inline, Roff, bold, italic, roman};

use super::Shell;
use super::options::clap_args;
use super::words::Words;

/// lbctl as a whole, for clap_complete and clap_mangen: the words as
/// subcommands, ipvsadm's options as the top-level arguments (its `--help`
/// and `--version` among them), and the synopsis of [`super::usage`].
pub(super) fn reference() -> clap::Command {
    let mut cmd = Words::command()
        .disable_help_flag(true)
        .override_usage(synopsis())
        .args(clap_args());
    cmd.build();
    cmd
}

/// The forms of lbctl's command line (lbctl's `Usage:` lines of
/// [`super::usage`]), one a line.
fn synopsis() -> String {
    super::lbctl_forms()
        .lines()
        .map(|l| l.trim().to_owned() + "\n")
        .collect()
}

/// `lbctl completions SHELL`: the shell's completion script for lbctl's
/// words and ipvsadm's options.
pub fn completions(shell: Shell) -> String {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = reference();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "lbctl", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `lbctl manpage`: lbctl(8) in roff. ipvsadm's commands and options are
/// listed under COMMANDS and OPTIONS, as in ipvsadm(8); then each lbctl word
/// with its synopsis and arguments.
pub fn manpage() -> String {
    let cmd = reference();
    let man = Man::new(cmd.clone())
        .section("8")
        .source(format!("lbctl {}", env!("CARGO_PKG_VERSION")))
        .manual("System Manager's Manual");
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    let mut roff = Roff::new();
    words_section(&mut roff, &cmd);
    tail_sections(&mut roff);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    text.push_str(&roff.to_roff());
    text
}

/// The LBCTL WORDS section: each visible word's synopsis, description and
/// arguments.
fn words_section(roff: &mut Roff, cmd: &clap::Command) {
    roff.control("SH", ["LBCTL WORDS"]);
    roff.text([roman(
        "A first argument that is not an option is one of lbctl's own words; \
         each takes --help.",
    )]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        roff.control("SS", [sub.get_name()]);
        let usage = sub.clone().render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
        let name = format!("lbctl {}", sub.get_name());
        let rest = usage.strip_prefix(name.as_str()).unwrap_or(usage);
        roff.text([bold(name.as_str()), roman(rest)]);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            roff.control("PP", []);
            roff.text([roman(about.to_string().replace('\n', " "))]);
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            if arg.get_id() == "help" {
                continue;
            }
            roff.control("TP", []);
            roff.text(arg_header(arg));
            let mut help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            if !values.is_empty() {
                help.push_str(&format!(" ({})", values.join(", ")));
            }
            let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
            if let Some(d) = arg.get_default_values().first().filter(|_| takes_value) {
                help.push_str(&format!(" [default: {}]", d.to_string_lossy()));
            }
            roff.text([roman(help)]);
        }
    }
}

/// `-f, --foreground`, `--metrics <ADDR:PORT>`, `<IFACE>`.
fn arg_header(arg: &clap::Arg) -> Vec<Inline> {
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| format!("<{v}>"))
        .unwrap_or_default();
    if arg.is_positional() {
        let value = if arg.is_required_set() {
            value
        } else {
            format!("[{value}]")
        };
        return vec![italic(value)];
    }
    let mut header = Vec::new();
    if let Some(s) = arg.get_short() {
        header.push(bold(format!("-{s}")));
        header.push(roman(", "));
    }
    if let Some(l) = arg.get_long() {
        header.push(bold(format!("--{l}")));
    }
    if arg.get_num_args().is_some_and(|n| n.takes_values()) {
        header.push(roman(" "));
        header.push(italic(value));
    }
    header
}

fn tail_sections(roff: &mut Roff) {
    roff.control("SH", ["PRIVILEGES"]);
    roff.text([roman(
        "Root, or a user with CAP_BPF and CAP_NET_ADMIN (ipvsadm needs CAP_NET_ADMIN), for \
         every command that reads or changes the tables, daemon and daemon-status; attach \
         needs CAP_PERFMON as well, and mounting bpffs on /sys/fs/bpf CAP_SYS_ADMIN. A \
         missing capability is named and nothing changes. The tables belong to the owner of \
         the pin directory ($LB_PIN_PATH, default /sys/fs/bpf/lb): every pin lbctl makes \
         there is given to that user. The daemon's state ($LB_RUN_DIR, default /run/lbctl) \
         and log file are for its user only.",
    )]);
    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman(
        "As ipvsadm: 0 on success; 255 when IPVS would refuse the command (ipvsadm's \
         messages, e.g. Service already exists, No such destination, Memory allocation \
         problem), for a command-line syntax error (popt's, and ipvsadm's \"Try\" line) and \
         a misused lbctl word; 2 for a value ipvsadm refuses (its fail()); 1 for -L of a \
         missing service and for lbctl's own errors (no privilege, a real server behind a \
         gateway, ...). -R exits with the status of its last line. lbctl daemon-status \
         exits 0 when the daemon runs, 1 when its pid file is stale and 3 when none runs, \
         as ldirectord's status does.",
    )]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("ipvsadm(8), ldirectord(8)")]);
}
