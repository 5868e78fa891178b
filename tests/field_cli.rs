//! End-to-end: the real binary records, lists, voids and exports in a temporary data directory.
mod util;
use util::Kit;

#[test]
fn commands_before_init_say_to_run_init() {
    let k = Kit::empty();
    let (_, err) = k.fails(&["list"], 2);
    assert!(err.contains("ikd-field init"), "{err}");
}

#[test]
fn record_list_show() {
    let k = Kit::new();
    let people = ikd_field::synth::citizens(1, "1702", 3);
    let a = k.record_synthetic(&people, 0);
    assert_eq!(a["ok"], true);
    assert_eq!(a["record"]["seq"], 1);
    let listed = k.json(&["list"]);
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["records"][0]["nik"], people[0].nik.as_str());
}
