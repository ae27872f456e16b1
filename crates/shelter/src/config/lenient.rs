//! Deserializers that accept a scalar where a string is wanted: environment values are
//! typed by their look, so `SHELTER_FIRST_SUPERUSER_PASSWORD=12345678` arrives as a number.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize as _;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// The smallest key length HS256 is given; shorter keys are brute-forceable.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

struct Text;

impl Visitor<'_> for Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
}

struct TextList;

impl<'de> Visitor<'de> for TextList {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a comma-separated string or a list of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
        Ok(v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            items.push(item.trim().to_owned());
        }
        Ok(items)
    }
}

pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(Text)
}

/// A name that must not be empty (an `aud` claim).
pub fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Some(string(d)?)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| de::Error::custom("must not be empty"))
}

pub fn optional_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    // An empty value means "unset", as it does for most tools reading the environment.
    Ok(Some(string(d)?).filter(|s| !s.is_empty()))
}

pub fn optional_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    optional_string(d).map(|s| s.map(SecretString::from))
}

pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(TextList)
}

/// CORS origins, each checked and put in the canonical form browsers send, once.
pub fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list(d)?
        .into_iter()
        .map(|origin| {
            if origin == "*" {
                return Ok(origin);
            }
            let canonical = url::Url::parse(&origin)
                .map_err(|e| de::Error::custom(format!("{origin:?}: {e}")))?
                .origin()
                .ascii_serialization();
            if canonical == origin.trim_end_matches('/') {
                Ok(canonical)
            } else {
                Err(de::Error::custom(format!(
                    "{origin:?} is not an origin (scheme://host[:port])"
                )))
            }
        })
        .collect()
}

/// A value of any type that parses itself from text, the type's own reason kept.
pub fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err: fmt::Display>,
{
    string(d)?.parse().map_err(de::Error::custom)
}

/// As [`parsed`], an empty value meaning "unset".
pub fn optional_parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err: fmt::Display>,
{
    optional_string(d)?
        .map(|text| text.parse().map_err(de::Error::custom))
        .transpose()
}

/// An `http://` or `https://` URL.
pub fn web_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    web(parsed(d)?)
}

/// An `http://` or `https://` URL, or nothing.
pub fn optional_web_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    optional_parsed(d)?.map(web).transpose()
}

fn web<E: de::Error>(url: url::Url) -> Result<url::Url, E> {
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err(E::custom("must be an http:// or https:// URL"))
    }
}

pub fn signing_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    let key = optional_secret(d)?;
    match key {
        Some(key) if key.expose_secret().len() < MIN_SECRET_KEY_BYTES => Err(de::Error::custom(
            format!("must be at least {MIN_SECRET_KEY_BYTES} bytes"),
        )),
        key => Ok(key),
    }
}

/// A whole number of `unit`s up to `u32::MAX` (so a lifetime added to the clock cannot
/// overflow), zero refused unless `zero` allows it.
fn span<'de, D: Deserializer<'de>>(d: D, unit: Duration, zero: bool) -> Result<Duration, D::Error> {
    let count = u32::deserialize(d)?;
    if count == 0 && !zero {
        return Err(de::Error::custom("must be at least 1"));
    }
    Ok(unit * count)
}

pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    span(d, Duration::from_secs(1), false)
}

pub fn seconds_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    span(d, Duration::from_secs(1), true)
}

pub fn minutes<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    span(d, Duration::from_mins(1), false)
}

pub fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    span(d, Duration::from_hours(24), false)
}

/// `noreply@example.com` or `Name <noreply@example.com>`.
pub fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<shelter_mail::Mailbox, D::Error> {
    let text = string(d)?;
    text.parse().map_err(|_| {
        de::Error::custom(format!(
            "{text:?} is not an email address (or `Name <address>`)"
        ))
    })
}

/// A list of IP addresses or CIDR ranges, parsed here once: an address is the range
/// of just itself.
pub fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    list(d)?
        .iter()
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    de::Error::custom(format!(
                        "{entry:?} is neither an IP address nor a CIDR range"
                    ))
                })
        })
        .collect()
}

/// A list of tables from the file (`[[providers]]`), or the same list as JSON text from the
/// environment (`SHELTER_PROVIDERS`); an entry that does not read is named by its place
/// and field.
pub fn json_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = serde_json::Value::deserialize(d)?;
    let read = |value: serde_json::Value| {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            de::Error::custom(format!("at {path}: {}", e.into_inner()))
        })
    };
    match value {
        serde_json::Value::String(text) => {
            let list: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| de::Error::custom(format!("not a JSON list: {e}")))?;
            read(list)
        }
        other => read(other),
    }
}
