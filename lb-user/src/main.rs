fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = lb_user::pin_dir();
    let pins = lb_user::Pins::open(&dir, None)?;
    drop(pins);
    if args.get(1).map(String::as_str) == Some("attach") {
        lb_user::attach::attach(&dir, Default::default(), &args[2], lb_user::attach::Mode::Native, "lb_xdp")?;
    }
    Ok(())
}
