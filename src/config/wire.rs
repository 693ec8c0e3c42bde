//! How calls to a provider are addressed beyond its URL: the header carrying the key, extra
//! headers and query parameters (Azure OpenAI, OpenRouter, a company gateway in front of a
//! provider), and the `{model}` placeholder of a URL; checked once, from `keel.toml` or from
//! quick mode's flags, with the same rules and messages.

use std::collections::BTreeMap;

use super::gateway::RawProvider;

/// Per-provider request details, checked at load time (names and values are valid HTTP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireOptions {
    /// Lower-case header name carrying the key; `None`: the kind's default (`authorization`
    /// with `Bearer KEY` for OpenAI-compatible, `x-api-key` for Anthropic). Any other header
    /// carries the key as it is.
    pub auth_header: Option<String>,
    /// Lower-case name and value, sent on every call after Keel's own headers.
    pub headers: Vec<(String, String)>,
    /// Name and value, percent-encoded into every call's URL.
    pub query: Vec<(String, String)>,
}

/// Quick mode's `--auth-header`, `--header "Name: value"` and `--query name=value`, checked by
/// the rules of a `[[providers]]` entry; an error names the flag.
pub fn quick_wire(
    kind: &str,
    base_url: &str,
    api_key_env: Option<&str>,
    auth_header: Option<&str>,
    header_flags: &[String],
    query_flags: &[String],
) -> Result<WireOptions, (&'static str, String)> {
    let mut headers = BTreeMap::new();
    for h in header_flags {
        let (name, value) = h.split_once(':').ok_or(("--header", format!("`{h}` is not like \"Name: value\"")))?;
        headers.insert(name.trim().to_string(), value.trim().to_string());
    }
    let mut query = BTreeMap::new();
    for q in query_flags {
        let (name, value) = q.split_once('=').ok_or(("--query", format!("`{q}` is not like name=value")))?;
        query.insert(name.to_string(), value.to_string());
    }
    let raw = RawProvider {
        name: "upstream".into(),
        kind: kind.into(),
        base_url: base_url.into(),
        api_key_env: api_key_env.map(str::to_string),
        stream_usage: None,
        auth_header: auth_header.map(str::to_string),
        headers: Some(headers),
        query: Some(query),
        attempt_timeout: None,
        first_token_timeout: None,
    };
    wire_options(&raw).map_err(|(key, message)| {
        let flag = match key {
            "providers.auth_header" => "--auth-header",
            "providers.headers" => "--header",
            "providers.query" => "--query",
            _ => "the upstream URL",
        };
        (flag, message)
    })
}

/// Headers Keel sets itself (or HTTP/1.1 owns) that a provider's `headers` may not replace.
const RESERVED_HEADERS: [&str; 7] =
    ["content-type", "content-length", "host", "transfer-encoding", "connection", "te", "upgrade"];

/// Checks a provider's `auth_header`, `headers`, `query` and URL template; errors name the
/// key and the provider.
pub(super) fn wire_options(p: &RawProvider) -> Result<WireOptions, (&'static str, String)> {
    let name = &p.name;
    let header_name = |key: &'static str, h: &str| -> Result<String, (&'static str, String)> {
        match hyper::header::HeaderName::from_bytes(h.as_bytes()) {
            Ok(n) if RESERVED_HEADERS.contains(&n.as_str()) => {
                Err((key, format!("provider `{name}`: `{h}` is set by Keel and cannot be configured")))
            }
            Ok(n) => Ok(n.as_str().to_string()),
            Err(_) => Err((key, format!("provider `{name}`: `{h}` is not a valid HTTP header name"))),
        }
    };
    let auth_header = p.auth_header.as_deref().map(|h| header_name("providers.auth_header", h)).transpose()?;
    let key_header = auth_header
        .clone()
        .unwrap_or_else(|| if p.kind == "anthropic" { "x-api-key" } else { "authorization" }.to_string());
    let mut headers = Vec::new();
    for (h, v) in p.headers.iter().flatten() {
        let h = header_name("providers.headers", h)?;
        if h == key_header && p.api_key_env.is_some() {
            return Err((
                "providers.headers",
                format!("provider `{name}`: `{h}` carries the key from api_key_env; set it there, not in headers"),
            ));
        }
        if hyper::header::HeaderValue::from_str(v).is_err() {
            return Err((
                "providers.headers",
                format!("provider `{name}`: the value of `{h}` is not a valid HTTP header value"),
            ));
        }
        headers.push((h, v.clone()));
    }
    let mut query = Vec::new();
    for (k, v) in p.query.iter().flatten() {
        if k.is_empty() {
            return Err(("providers.query", format!("provider `{name}`: a query parameter has an empty name")));
        }
        query.push((k.clone(), v.clone()));
    }
    if p.base_url.contains(['?', '#']) {
        return Err((
            "providers.base_url",
            format!("provider `{name}`: put query parameters in `query = {{ ... }}`, not in the URL"),
        ));
    }
    if p.base_url.replace("{model}", "").contains(['{', '}']) {
        return Err((
            "providers.base_url",
            format!("provider `{name}`: `{{model}}` is the only placeholder a URL may hold"),
        ));
    }
    Ok(WireOptions { auth_header, headers, query })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(provider: &str) -> Result<crate::config::Config, String> {
        let toml = format!("[[providers]]\nname = \"az\"\n{provider}\n");
        crate::config::Config::parse(&toml, "k.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn azure_style_providers_parse() {
        let c = parse(
            "kind = \"openai\"\nbase_url = \"https://r.openai.azure.com/openai/deployments/{model}\"\n\
             api_key_env = \"AZ_KEY\"\nauth_header = \"Api-Key\"\n\
             headers = { \"X-Title\" = \"Keel test\" }\nquery = { \"api-version\" = \"2024-10-21\" }",
        )
        .unwrap();
        let w = &c.gateway.providers[0].wire;
        assert_eq!(w.auth_header.as_deref(), Some("api-key"), "header names are lower-cased");
        assert_eq!(w.headers, vec![("x-title".to_string(), "Keel test".to_string())]);
        assert_eq!(w.query, vec![("api-version".to_string(), "2024-10-21".to_string())]);
        let plain = parse("kind = \"openai\"\nbase_url = \"http://x/v1\"").unwrap();
        assert_eq!(plain.gateway.providers[0].wire, WireOptions::default());
    }

    #[test]
    fn bad_wire_options_name_the_key_and_the_provider() {
        let cases = [
            ("headers = { \"bad header\" = \"v\" }", "providers.headers", "not a valid HTTP header name"),
            ("headers = { \"x-a\" = \"line\\nbreak\" }", "providers.headers", "not a valid HTTP header value"),
            ("headers = { \"Content-Type\" = \"text/plain\" }", "providers.headers", "set by Keel"),
            ("api_key_env = \"K\"\nheaders = { \"Authorization\" = \"Bearer x\" }", "providers.headers", "api_key_env"),
            ("auth_header = \"host\"", "providers.auth_header", "set by Keel"),
            ("query = { \"\" = \"v\" }", "providers.query", "empty name"),
        ];
        for (extra, key, says) in cases {
            let e = parse(&format!("kind = \"openai\"\nbase_url = \"http://x/v1\"\n{extra}")).unwrap_err();
            assert!(e.contains("k.toml") && e.contains(key) && e.contains("`az`") && e.contains(says), "{extra}: {e}");
        }
        for url in ["http://x/v1?api-version=1", "http://x/{deployment}/v1"] {
            let e = parse(&format!("kind = \"openai\"\nbase_url = \"{url}\"")).unwrap_err();
            assert!(e.contains("providers.base_url"), "{url}: {e}");
        }
        let e = parse("kind = \"openai\"\nbase_url = \"http://x\"\nheaders = [1]").unwrap_err();
        assert!(e.contains("headers"), "{e}");
        // Anthropic's key header is x-api-key: naming it in headers beside a key is refused.
        let e = parse(
            "kind = \"anthropic\"\nbase_url = \"http://x\"\napi_key_env = \"K\"\nheaders = { \"x-api-key\" = \"k\" }",
        )
        .unwrap_err();
        assert!(e.contains("api_key_env"), "{e}");
    }

    #[test]
    fn quick_mode_flags_follow_the_same_rules_and_name_the_flag() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let w = quick_wire(
            "openai",
            "http://x/{model}",
            Some("K"),
            Some("api-key"),
            &h(&["X-Title: Keel"]),
            &h(&["api-version=1"]),
        )
        .unwrap();
        assert_eq!(w.headers, vec![("x-title".to_string(), "Keel".to_string())]);
        assert_eq!(w.query, vec![("api-version".to_string(), "1".to_string())]);
        assert_eq!(quick_wire("openai", "http://x", None, None, &h(&["no colon"]), &[]).unwrap_err().0, "--header");
        assert_eq!(quick_wire("openai", "http://x", None, None, &[], &h(&["novalue"])).unwrap_err().0, "--query");
        assert_eq!(quick_wire("openai", "http://x", None, Some("bad name"), &[], &[]).unwrap_err().0, "--auth-header");
        assert_eq!(quick_wire("openai", "http://x?a=1", None, None, &[], &[]).unwrap_err().0, "the upstream URL");
    }
}
