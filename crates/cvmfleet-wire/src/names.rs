//! Text rules of the API, one implementation for the spec validator, the planner and the
//! emulator: name patterns (`{R:x}`, `{R:x,F:y}`, `{IP}`) with the default numeric suffix, host
//! names, passwords and the shapes of resource IDs and instance types.
//!
//! The pattern rules are api.json's `InstanceName`/`HostName` text: "{R:x}：表示生成数字序列 [x,
//! x+n-1] … {R:x,F:y}：y表示固定位数（可选），取值范围为 [0,8] … 模式串需严格遵循 {R:x,F:y}或 {R:x}格式，
//! 无效格式（如 {}）视为普通文本 … 未指定模式串：实例显示名称添加后缀 1、2...n".
//!
//! ```
//! use cvmfleet_wire::names::NameTemplate;
//!
//! let t = NameTemplate::parse("web-{R:8,F:2}", false);
//! assert_eq!(t.render(0, 3, ""), "web-08");
//! assert_eq!(t.longest(3, ""), "web-10");
//! assert!(t.matches("web-09") && !t.matches("web-9"));
//! let plain = NameTemplate::parse("db", false);
//! assert_eq!(plain.longest(12, ""), "db12");
//! assert!(plain.matches("db") && plain.matches("db7") && !plain.matches("db-x"));
//! ```

use crate::vocab::{HOST_NAME_MAX_CHARS, HOST_NAME_MIN_CHARS, WINDOWS_HOST_NAME_MAX_CHARS};

/// One piece of a name template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `{R:start,F:width}`: the instance's number, counting from `start`, zero-padded to `width`.
    Range {
        start: u64,
        width: usize,
    },
    /// `{IP}`: the instance's primary private IP (host names only).
    Ip,
}

/// A parsed `InstanceName` or `HostName` with its patterns.
///
/// Patterns must follow `{R:x}`, `{R:x,F:y}` (y in 0..=8) or, for host names, `{IP}` exactly;
/// anything else in braces is plain text, as the API reference says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    pieces: Vec<Piece>,
}

impl NameTemplate {
    /// Parses a template; `allow_ip` enables `{IP}` (host names).
    #[must_use]
    pub fn parse(raw: &str, allow_ip: bool) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = raw;
        while let Some(open) = rest.find('{') {
            text.push_str(&rest[..open]);
            let after = &rest[open..];
            match after
                .find('}')
                .and_then(|close| parse_pattern(&after[1..close], allow_ip).map(|p| (p, close)))
            {
                Some((piece, close)) => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(piece);
                    rest = &after[close + 1..];
                }
                None => {
                    text.push('{');
                    rest = &after[1..];
                }
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        NameTemplate { pieces }
    }

    /// Whether the template has any pattern (`{R:…}` or `{IP}`).
    #[must_use]
    pub fn has_pattern(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Text(_)))
    }

    /// The name of instance `index` (0-based) of `count`, with `ip` for `{IP}`.
    ///
    /// Without any pattern, several instances get the suffixes `1..=count`; a single
    /// instance keeps the name as written.
    #[must_use]
    pub fn render(&self, index: u64, count: u64, ip: &str) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Range { start, width } => {
                    let n = start.saturating_add(index);
                    out.push_str(&format!("{n:0width$}"));
                }
                Piece::Ip => out.push_str(ip),
            }
        }
        if count > 1 && !self.has_pattern() {
            out.push_str(&(index + 1).to_string());
        }
        out
    }

    /// The longest name a call creating `count` instances produces (its last one): numbers only
    /// grow with the index. `count` 0 is read as 1.
    #[must_use]
    pub fn longest(&self, count: u64, ip: &str) -> String {
        let count = count.max(1);
        self.render(count - 1, count, ip)
    }

    /// Whether `observed` is a name this template renders for some instance of some call: the
    /// text as written, `{R:x,F:y}` as a number ≥ x of at least y digits (zero-padded), `{IP}` as
    /// digits and dots, and, without any pattern, the text alone or followed by a suffix ≥ 1.
    #[must_use]
    pub fn matches(&self, observed: &str) -> bool {
        if !self.has_pattern() {
            let text = self.pieces.iter().map(|p| if let Piece::Text(t) = p { t.as_str() } else { "" });
            let text: String = text.collect();
            return observed == text
                || observed
                    .strip_prefix(text.as_str())
                    .is_some_and(|rest| rest.parse::<u64>().is_ok_and(|n| n >= 1) && !rest.starts_with('0'));
        }
        matches_from(&self.pieces, observed)
    }
}

fn matches_from(pieces: &[Piece], rest: &str) -> bool {
    let Some((first, more)) = pieces.split_first() else { return rest.is_empty() };
    match first {
        Piece::Text(t) => rest.strip_prefix(t.as_str()).is_some_and(|r| matches_from(more, r)),
        Piece::Range { start, width } => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            (1..=digits.min(20)).any(|len| {
                let (number, r) = rest.split_at(len);
                let rendered = |n: u64| format!("{n:0width$}", width = *width) == number;
                number.parse::<u64>().is_ok_and(|n| n >= *start && rendered(n)) && matches_from(more, r)
            })
        }
        Piece::Ip => {
            let len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
            (1..=len).any(|l| matches_from(more, &rest[l..]))
        }
    }
}

fn parse_pattern(inner: &str, allow_ip: bool) -> Option<Piece> {
    if inner == "IP" {
        return allow_ip.then_some(Piece::Ip);
    }
    let body = inner.strip_prefix("R:")?;
    let (start, width) = match body.split_once(",F:") {
        Some((start, width)) => (start, width),
        None => (body, "0"),
    };
    let start: u64 = digits(start)?.parse().ok()?;
    let width: usize = digits(width)?.parse().ok()?;
    (width <= 8).then_some(Piece::Range { start, width })
}

fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// Checks a final host name against the API's rules; `Err` says why it is illegal.
///
/// `.` and `-` may not start or end it nor follow each other. Windows: 2–15 letters, digits and
/// `-`, not all digits. Others: 2–60 characters, dot-separated segments of letters, digits and `-`.
/// (The seed's older text says 30 for Linux; the current reference says 60, and a client
/// sending 31–60 characters must not be refused by the emulator.)
pub fn check_host_name(name: &str, windows: bool) -> Result<(), String> {
    let len = name.chars().count();
    let max = if windows { WINDOWS_HOST_NAME_MAX_CHARS } else { HOST_NAME_MAX_CHARS };
    let min = HOST_NAME_MIN_CHARS;
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters long"));
    }
    let bytes = name.as_bytes();
    let edge = |b: u8| b == b'.' || b == b'-';
    if edge(bytes[0]) || edge(bytes[bytes.len() - 1]) {
        return Err("must not start or end with `.` or `-`".into());
    }
    if bytes.windows(2).any(|w| edge(w[0]) && edge(w[1])) {
        return Err("must not have `.` or `-` next to each other".into());
    }
    if !bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || (!windows && b == b'.')) {
        return Err(if windows {
            "may only hold letters, digits and `-`".into()
        } else {
            "may only hold letters, digits, `-` and `.`".into()
        });
    }
    if windows && bytes.iter().all(u8::is_ascii_digit) {
        return Err("must not be all digits".into());
    }
    Ok(())
}

/// The special characters a password may use.
const PASSWORD_SPECIALS: &str = "()`~!@#$%^&*-+=|{}[]:;',.?/";

/// Checks a login password: Linux 8–30 characters with at least two character classes, Windows
/// 12–30 with at least three; classes are lower case, upper case, digits and the specials
/// `( ) \` ~ ! @ # $ % ^ & * - + = | { } [ ] : ; ' , . ? /`.
pub fn check_password(password: &str, windows: bool) -> Result<(), String> {
    let len = password.chars().count();
    let (min, classes_needed) = if windows { (12, 3) } else { (8, 2) };
    if len < min || len > 30 {
        return Err(format!("must be {min} to 30 characters long"));
    }
    let mut classes = [false; 4];
    for c in password.chars() {
        let class = if c.is_ascii_lowercase() {
            0
        } else if c.is_ascii_uppercase() {
            1
        } else if c.is_ascii_digit() {
            2
        } else if PASSWORD_SPECIALS.contains(c) {
            3
        } else {
            return Err(format!("must not contain `{c}`"));
        };
        classes[class] = true;
    }
    let have = classes.iter().filter(|c| **c).count();
    if have < classes_needed {
        return Err(format!(
            "must mix at least {classes_needed} of lower case, upper case, digits and special characters"
        ));
    }
    Ok(())
}

/// Whether `id` is `prefix-` followed by 8 lower-case letters or digits, the shape of every
/// CVM/VPC resource ID (`ins-`, `img-`, `vpc-`, `subnet-`, `sg-`, `skey-`, `host-`).
#[must_use]
pub fn is_resource_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('-')).is_some_and(|body| {
        body.len() == 8 && body.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// The shape of an instance type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceTypeShape {
    /// `FAMILY.SIZE`, e.g. `S5.MEDIUM2`.
    Standard,
    /// `CDH_<cpu>C<memory>G` for instances on a dedicated host.
    Cdh {
        /// vCPUs.
        cpu: u32,
        /// Memory in GiB.
        memory: u32,
    },
}

/// Reads the shape of an instance type, or `None` when it is malformed.
#[must_use]
pub fn instance_type_shape(instance_type: &str) -> Option<InstanceTypeShape> {
    if let Some(spec) = instance_type.strip_prefix("CDH_") {
        let (cpu, memory) = spec.strip_suffix('G')?.split_once('C')?;
        let cpu: u32 = digits(cpu)?.parse().ok()?;
        let memory: u32 = digits(memory)?.parse().ok()?;
        return (cpu > 0 && memory > 0).then_some(InstanceTypeShape::Cdh { cpu, memory });
    }
    let (family, size) = instance_type.split_once('.')?;
    let upper_or_digit =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let family_ok = upper_or_digit(family) && family.as_bytes()[0].is_ascii_uppercase();
    (family_ok && upper_or_digit(size)).then_some(InstanceTypeShape::Standard)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(raw: &str, count: u64) -> Vec<String> {
        let t = NameTemplate::parse(raw, true);
        (0..count).map(|i| t.render(i, count, "10.0.12.8")).collect()
    }

    #[test]
    fn name_patterns_follow_the_reference() {
        assert_eq!(names("server_{R:3}", 1), ["server_3"]);
        assert_eq!(names("server_{R:3}", 2), ["server_3", "server_4"]);
        assert_eq!(names("server_{R:3,F:3}", 2), ["server_003", "server_004"]);
        assert_eq!(names("app_{R:99,F:2}", 2), ["app_99", "app_100"]);
        assert_eq!(names("server_", 2), ["server_1", "server_2"]);
        assert_eq!(names("QCLOUD-TEST", 1), ["QCLOUD-TEST"]);
        assert_eq!(names("x{}y", 1), ["x{}y"]);
        assert_eq!(names("a{R:1}-{R:10,F:3}", 2), ["a1-010", "a2-011"]);
        assert_eq!(names("node-{IP}", 1), ["node-10.0.12.8"]);
        assert_eq!(names("web-{IP}-{R:1}", 2), ["web-10.0.12.8-1", "web-10.0.12.8-2"]);
        assert_eq!(names("{R:1,F:9}", 1), ["{R:1,F:9}"]);
        assert_eq!(NameTemplate::parse("n-{IP}", false).render(0, 1, "1.2.3.4"), "n-{IP}");
        assert_eq!(names("{R:x}", 1), ["{R:x}"]);
        assert_eq!(names("unterminated {R:1", 1), ["unterminated {R:1"]);
    }

    #[test]
    fn longest_names_and_matching() {
        let t = NameTemplate::parse("a{R:98}", false);
        assert_eq!(t.longest(3, ""), "a100");
        assert_eq!(t.longest(0, ""), "a98");
        assert!(t.matches("a99") && t.matches("a100") && !t.matches("a97") && !t.matches("a"));
        let t = NameTemplate::parse("x{R:1}-{R:10,F:3}", false);
        assert!(t.matches("x2-011") && !t.matches("x2-11"));
        let t = NameTemplate::parse("node-{IP}", true);
        assert!(t.matches("node-10.0.12.8") && !t.matches("node-"));
        let plain = NameTemplate::parse("未命名", false);
        assert_eq!(plain.longest(100, "").len(), 12);
        assert!(plain.matches("未命名") && plain.matches("未命名42") && !plain.matches("未命名0"));
    }

    #[test]
    fn host_names() {
        assert!(check_host_name("web-1.prod", false).is_ok());
        assert!(check_host_name(&"a".repeat(60), false).is_ok());
        assert!(check_host_name(&"a".repeat(61), false).is_err());
        for bad in ["a", "-ab", "ab.", "a..b", "a.-b", "a_b", "ä-b"] {
            assert!(check_host_name(bad, false).is_err(), "{bad}");
        }
        assert!(check_host_name("win-01", true).is_ok());
        for bad in ["a.b", "123456", &"a".repeat(16)] {
            assert!(check_host_name(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password("Cvmfleet@Test2026!", false).is_ok());
        assert!(check_password("abcdefg1", false).is_ok());
        assert!(check_password("abcdefgh", false).is_err());
        assert!(check_password("abc1", false).is_err());
        assert!(check_password(&"aA1".repeat(11), false).is_err());
        assert!(check_password("abcdefg 1", false).is_err());
        assert!(check_password("abcdefghij12", true).is_err());
        assert!(check_password("abcdefghiJ12", true).is_ok());
    }

    #[test]
    fn id_and_type_shapes() {
        assert!(is_resource_id("ins-1vogaxgk", "ins"));
        assert!(is_resource_id("subnet-dcs9x3gz", "subnet"));
        for bad in ["ins-1122", "ins-1VOGAXGK", "ins1vogaxgk", "img-1vogaxgk", "ins-1vogaxgk0"] {
            assert!(!is_resource_id(bad, "ins"), "{bad}");
        }
        assert_eq!(instance_type_shape("S5.MEDIUM2"), Some(InstanceTypeShape::Standard));
        assert_eq!(instance_type_shape("CDH_1C1G"), Some(InstanceTypeShape::Cdh { cpu: 1, memory: 1 }));
        for bad in ["s5.medium2", "S5", ".MEDIUM2", "S5.", "CDH_1C", "CDH_0C1G", "5S.SMALL1", "S5.MEDIUM-2"] {
            assert_eq!(instance_type_shape(bad), None, "{bad}");
        }
    }
}
