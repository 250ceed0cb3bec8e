//! Glob patterns as KEYS and SCAN MATCH read them (Redis's
//! `stringmatchlen`): `*` any run of bytes, `?` one byte, `[abc]`, `[^a]`,
//! `[a-z]` a class, `\x` the byte x itself. Bytes, not characters.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative with one backtrack point per `*`: a pattern of many stars
    // costs O(pattern × text), never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((hit, next)) = class(pattern, p + 1, text[t])
                        && hit
                    {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == text[t] {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                byte => {
                    if byte == text[t] {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether `byte` is in the class that starts at `at` (after its `[`), and
/// where the pattern goes on after the class. An unclosed class runs to the
/// end of the pattern, as in Redis.
fn class(pattern: &[u8], mut at: usize, byte: u8) -> Option<(bool, usize)> {
    let negated = pattern.get(at) == Some(&b'^');
    if negated {
        at += 1;
    }
    let mut hit = false;
    while at < pattern.len() && pattern[at] != b']' {
        if pattern[at] == b'\\' && at + 1 < pattern.len() {
            hit |= pattern[at + 1] == byte;
            at += 2;
        } else if at + 2 < pattern.len() && pattern[at + 1] == b'-' && pattern[at + 2] != b']' {
            let (low, high) = (pattern[at].min(pattern[at + 2]), pattern[at].max(pattern[at + 2]));
            hit |= (low..=high).contains(&byte);
            at += 3;
        } else {
            hit |= pattern[at] == byte;
            at += 1;
        }
    }
    // Past the `]` (or at the end of an unclosed class).
    let next = (at + 1).min(pattern.len());
    Some((hit != negated, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_redis_matches_them() {
        // Each (pattern, text, matches) was checked against redis-server 7.0's KEYS.
        for (pattern, text, want) in [
            ("*", "", true),
            ("*", "abc", true),
            ("*1", "k1", true),
            ("*1", "k12", false),
            ("user:*:1?", "user:7:10", true),
            ("user:*:1?", "user:7:1", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hbllo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hxllo", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("[abc", "b", true),
            ("**a", "ba", true),
            ("exact", "exact", true),
            ("exact", "exacT", false),
        ] {
            assert_eq!(matches(pattern.as_bytes(), text.as_bytes()), want, "{pattern} vs {text}");
        }
    }

    #[test]
    fn many_stars_do_not_explode() {
        // A pattern built to make naive backtracking exponential finishes at once.
        let pattern = "a*".repeat(30) + "b";
        let text = "a".repeat(200);
        assert!(!matches(pattern.as_bytes(), text.as_bytes()));
    }
}
