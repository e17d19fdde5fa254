//! Enrollment: unknown keys wait, roles, limits, join tokens.
use super::*;
use fleet_protocol::keys::KeyPair;

#[test]
fn unknown_keys_wait_and_are_never_accepted_silently() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Enrollment::open(dir.path()).unwrap();
    let node = KeyPair::generate().public();
    assert_eq!(e.knock(&node.link, "web-01", None), Verdict::Pending("web-01".into()));
    assert_eq!(e.knock(&node.link, "web-01", None), Verdict::Pending("web-01".into()), "still pending");
    assert_eq!(e.snapshot().lookup(&node.link), Some(Verdict::Pending("web-01".into())), "known in memory");
    let rows = list(dir.path());
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].name.as_str(), rows[0].state, rows[0].role), ("web-01", "pending", "-"));
    accept(dir.path(), "web-01", Role::Node).unwrap();
    assert_eq!(e.knock(&node.link, "whatever", None), Verdict::Accepted("web-01".into(), Role::Node), "the name comes from enrollment");
    assert_eq!(list(dir.path())[0].role, "node");
    assert!(accept(dir.path(), "web-01", Role::Console).is_err(), "one role per name");
    assert!(std::fs::read_to_string(dir.path().join("accepted/web-01.pub")).unwrap().contains("role = \"node\""));
    reject(dir.path(), "web-01").unwrap();
    assert_eq!(e.knock(&node.link, "web-01", None), Verdict::Rejected("web-01".into()));
    assert!(accept(dir.path(), "nope", Role::Node).is_err());
    assert!(accept(dir.path(), "../etc", Role::Node).is_err());
}

#[test]
fn keys_enrolled_before_roles_are_refused_until_re_enrolled() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().public();
    std::fs::create_dir_all(dir.path().join("accepted")).unwrap();
    std::fs::write(dir.path().join("accepted").join("old.pub"), key.to_file_text("old")).unwrap();
    let mut e = Enrollment::open(dir.path()).unwrap();
    assert_eq!(e.knock(&key.link, "old", None), Verdict::NoRole("old".into()));
    assert_eq!(list(dir.path())[0].state, "no-role");
    accept(dir.path(), "old", Role::Console).unwrap();
    assert_eq!(e.knock(&key.link, "old", None), Verdict::Accepted("old".into(), Role::Console));
}

#[test]
fn pending_keys_are_bounded_in_count_and_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Enrollment::open_with(dir.path(), KnockLimits { max_pending: 5, per_second: 1000.0, ..KnockLimits::default() }).unwrap();
    let keys: Vec<_> = (0..8).map(|_| KeyPair::generate().public().link).collect();
    let verdicts: Vec<_> = keys.iter().map(|k| e.knock(k, "x", None)).collect();
    assert_eq!(verdicts.iter().filter(|v| matches!(v, Verdict::Pending(_))).count(), 5);
    assert!(matches!(verdicts[7], Verdict::Refused(_)));
    assert_eq!(std::fs::read_dir(dir.path().join("pending")).unwrap().count(), 5);

    let dir = tempfile::tempdir().unwrap();
    let mut e = Enrollment::open_with(dir.path(), KnockLimits { max_pending: 1000, per_second: 2.0, ..KnockLimits::default() }).unwrap();
    let recorded = (0..20).filter(|_| matches!(e.knock(&KeyPair::generate().public().link, "y", None), Verdict::Pending(_))).count();
    assert!((4..=5).contains(&recorded), "a burst of twice the rate: {recorded}");
}

#[test]
fn a_join_token_enrolls_its_holder_once_and_a_console_becomes_a_caller() {
    let dir = tempfile::tempdir().unwrap();
    let callers = dir.path().join("callers");
    let hub = KeyPair::generate().public();
    let mut e = Enrollment::open(&dir.path().join("enroll")).unwrap();
    e.callers_dir = Some(callers.clone());
    let req = TokenRequest { role: Role::Node, name: None, uses: 2, ttl_s: 60 };
    let token = create_token(&dir.path().join("enroll"), "tcp://127.0.0.1:1", hub, &req).unwrap();
    let (a, b, c) = (KeyPair::generate(), KeyPair::generate(), KeyPair::generate());
    assert_eq!(e.knock(&a.public().link, "web-01", Some(&token.proof(&a))), Verdict::Accepted("web-01".into(), Role::Node));
    assert_eq!(e.knock(&b.public().link, "web-02", Some(&token.proof(&b))), Verdict::Accepted("web-02".into(), Role::Node));
    assert!(matches!(e.knock(&c.public().link, "web-03", Some(&token.proof(&c))), Verdict::Refused(_)), "two uses only");
    let mut forged = token.proof(&c);
    forged.secret[0] ^= 1;
    let d = KeyPair::generate();
    let req = TokenRequest { role: Role::Node, name: None, uses: 1, ttl_s: 60 };
    let token = create_token(&dir.path().join("enroll"), "tcp://127.0.0.1:1", hub, &req).unwrap();
    forged.id = token.id.clone();
    assert!(matches!(e.knock(&c.public().link, "web-03", Some(&forged)), Verdict::Refused(_)), "wrong secret");
    assert!(matches!(e.knock(&d.public().link, "web-01", Some(&token.proof(&d))), Verdict::Refused(_)), "name taken");
    assert!(matches!(e.knock(&d.public().link, "web-04", Some(&token.proof(&c))), Verdict::Refused(_)), "proof signed for another key");

    let req = TokenRequest { role: Role::Console, name: Some("alice".into()), uses: 1, ttl_s: 60 };
    let token = create_token(&dir.path().join("enroll"), "tcp://127.0.0.1:1", hub, &req).unwrap();
    let alice = KeyPair::generate();
    assert_eq!(e.knock(&alice.public().link, "root", Some(&token.proof(&alice))), Verdict::Accepted("alice".into(), Role::Console));
    assert_eq!(PublicKeys::load(&callers.join("alice.pub")).unwrap(), alice.public(), "the hub now trusts alice's signatures");
    assert!(create_token(dir.path(), "x", hub, &TokenRequest { role: Role::Console, name: None, uses: 1, ttl_s: 1 }).is_err());
}

#[test]
fn one_source_is_held_to_its_own_rate_and_count_without_crowding_out_others() {
    let dir = tempfile::tempdir().unwrap();
    let limits = KnockLimits { max_pending: 1000, per_second: 1000.0, per_source_per_second: 2.0, max_pending_per_source: 3 };
    let mut e = Enrollment::open_with(dir.path(), limits).unwrap();
    let flooder: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let newcomer: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let verdicts: Vec<_> =
        (0..20).map(|i| e.knock_from(&KeyPair::generate().public().link, &format!("f{i}"), None, Some(flooder))).collect();
    let recorded = verdicts.iter().filter(|v| matches!(v, Verdict::Pending(_))).count();
    assert_eq!(recorded, 3, "at most max_pending_per_source from one address: {verdicts:?}");
    assert!(verdicts.iter().any(|v| matches!(v, Verdict::Refused(why) if why.contains("192.0.2.1"))), "the refusal names the source");
    let v = e.knock_from(&KeyPair::generate().public().link, "web-09", None, Some(newcomer));
    assert_eq!(v, Verdict::Pending("web-09".into()), "another address still gets in");
    // The flooder's keys are dealt with: the source may record again (within its rate).
    for name in ["f0", "f1", "f2"] {
        reject(dir.path(), name).unwrap();
    }
    e.rescan(true);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(matches!(e.knock_from(&KeyPair::generate().public().link, "f20", None, Some(flooder)), Verdict::Pending(_)));
}
