//! Which infrastructure-as-code a repository uses, told from a listing of its files and the
//! text of the few small ones worth reading (the caller reads them; nothing here touches a
//! file system).
//!
//! The rules, first match wins:
//!
//! 1. **SAM**: a YAML or JSON template whose `Transform` is (or lists)
//!    `AWS::Serverless-2016-10-31`. First, because a SAM template is also a CloudFormation
//!    template and only the transform tells them apart.
//! 2. **CloudFormation**: a file named after `template`, `cloudformation` or `stack`
//!    (`template.yaml`, `cloudformation.yml`, `stack.json`, `network-stack.yaml`,
//!    `vpc.template.json`; extensions `.yaml`, `.yml`, `.json`, `.template`) with
//!    `AWSTemplateFormatVersion` or a `Resources` mapping. A template is deployable as it is.
//! 3. **CDK**: `cdk.json`. Before Terraform and plain functions: a CDK app synthesizes the whole
//!    infrastructure, and its Python entry point is an `app.py` that rule 5 would take for a
//!    function.
//! 4. **Terraform**: any `*.tf` or `*.tf.json`. Before plain functions, since Terraform
//!    repositories often hold a function's source (`handler.py`) that Terraform deploys.
//! 5. **A plain Lambda function**, last because `package.json` or `app.py` appear in almost any
//!    repository: Node when `package.json` sits beside `index.js` (`index.handler`) or
//!    `handler.js` (`handler.handler`) (`.mjs` and `.cjs` too); Python with
//!    `lambda_function.py` (`lambda_function.lambda_handler`), `app.py` (`app.lambda_handler`)
//!    or `handler.py` (`handler.handler`), in that order. The names follow the Lambda console's
//!    and SAM's starter templates.
//!
//! Where: each rule looks in the root first, then in well-known folders one level down
//! ([`IAC_FOLDERS`] for rules 1–4, [`FUNCTION_FOLDERS`] for rule 5), in that order; a rule
//! found anywhere beats a later rule found at the root (a SAM template in `infra/` deploys the
//! function at the root). Deeper files, and folders whose name starts with `.` (`.aws-sam`,
//! `.terraform`) or that are build output (`cdk.out`, `node_modules`), are never looked at.
//! The outcome does not depend on the listing's order.

use super::template::{is_cloudformation, is_sam, parse_template};
use std::collections::BTreeMap;
use std::fmt;

/// The largest file read to look inside it, in bytes (CloudFormation's own template limit).
pub const MAX_READ_BYTES: u64 = 1_000_000;

/// Folders, one level below the root, where infrastructure-as-code is looked for after the root.
pub const IAC_FOLDERS: &[&str] = &[
    "infra",
    "infrastructure",
    "deploy",
    "deployment",
    "cloudformation",
    "cfn",
    "sam",
    "templates",
    "template",
    "iac",
    "aws",
    "terraform",
    "cdk",
];

/// Folders, one level below the root, where a plain function is looked for after the root.
pub const FUNCTION_FOLDERS: &[&str] = &["src", "function", "lambda", "app"];

/// Folders below which nothing is looked at or zipped, besides those starting with `.`.
const SKIPPED_FOLDERS: &[&str] = &["node_modules", "cdk.out", "__pycache__"];

/// A file of the repository: its path relative to the root with `/` separators, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// The path relative to the repository's root (`infra/template.yaml`).
    pub path: String,
    /// The size in bytes.
    pub size: u64,
}

/// The kind of infrastructure-as-code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IacType {
    /// An AWS SAM template.
    Sam,
    /// A CloudFormation template.
    CloudFormation,
    /// An AWS CDK app.
    Cdk,
    /// Terraform configuration.
    Terraform,
    /// A Lambda function's source without any infrastructure-as-code.
    Lambda,
}

impl fmt::Display for IacType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            IacType::Sam => "SAM",
            IacType::CloudFormation => "CloudFormation",
            IacType::Cdk => "CDK",
            IacType::Terraform => "Terraform",
            IacType::Lambda => "Lambda function",
        })
    }
}

/// A plain function's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Node.js.
    Nodejs,
    /// Python.
    Python,
}

impl Runtime {
    /// The Lambda runtime identifier to create the function with (`nodejs22.x`, `python3.13`).
    pub fn lambda_runtime(self) -> &'static str {
        match self {
            Runtime::Nodejs => "nodejs22.x",
            Runtime::Python => "python3.13",
        }
    }
}

/// A plain Lambda function: what to create it with and what to zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainFunction {
    /// The language.
    pub runtime: Runtime,
    /// The handler (`index.handler`, `lambda_function.lambda_handler`).
    pub handler: String,
    /// The file the handler is in (`src/index.js`).
    pub entry: String,
    /// The dependency manifest, if any (`package.json`, `requirements.txt`): the deployer installs
    /// the dependencies into the folder before zipping, unless they are already there.
    pub manifest: Option<String>,
    /// The files to zip, as repository paths, sorted: every file of the listing under the
    /// function's folder except hidden ones, `node_modules`, `__pycache__` and `*.pyc`. Their
    /// names in the zip are relative to [`Detected::folder`]; the dependencies the deployer
    /// installs (`node_modules`, Python packages) go in beside them.
    pub files: Vec<String>,
}

/// What was found, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The kind of infrastructure-as-code.
    pub iac: IacType,
    /// The template's path, for SAM and CloudFormation.
    pub template: Option<String>,
    /// The folder to work in (`.` for the root): the template's, the one with `cdk.json`, with
    /// the `.tf` files, or the function's.
    pub folder: String,
    /// A sentence for the deployment log
    /// (`SAM: template.yaml declares Transform AWS::Serverless-2016-10-31`).
    pub reason: String,
    /// For [`IacType::Lambda`], the function.
    pub function: Option<PlainFunction>,
}

/// Nothing deployable was found; the text says what was looked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{looked_for}")]
pub struct NotFound {
    /// What was looked for, and where (and any template that could not be read).
    pub looked_for: String,
}

/// Finds how the repository is deployed. `read` returns a file's text (or `None` when it
/// cannot); it is asked only for files of at most [`MAX_READ_BYTES`] that may be templates or
/// `cdk.json`.
pub fn detect(
    files: &[RepoFile],
    mut read: impl FnMut(&str) -> Option<String>,
) -> Result<Detected, NotFound> {
    let listing = Listing::new(files);
    let mut templates = Templates::default();
    let iac_folders = || std::iter::once("").chain(IAC_FOLDERS.iter().copied());

    for folder in iac_folders() {
        for path in listing.template_candidates(folder, |_| true) {
            if let Some(t) = templates.read(&listing, &path, &mut read)
                && is_sam(t)
            {
                return Ok(found(
                    IacType::Sam,
                    Some(&path),
                    folder,
                    format!("SAM: {path} declares Transform AWS::Serverless-2016-10-31"),
                ));
            }
        }
    }
    for folder in iac_folders() {
        for path in listing.template_candidates(folder, cloudformation_name) {
            if let Some(t) = templates.read(&listing, &path, &mut read)
                && is_cloudformation(t)
            {
                let what = if t.get("AWSTemplateFormatVersion").is_some() {
                    "AWSTemplateFormatVersion"
                } else {
                    "Resources"
                };
                return Ok(found(
                    IacType::CloudFormation,
                    Some(&path),
                    folder,
                    format!("CloudFormation: {path} declares {what}"),
                ));
            }
        }
    }
    for folder in iac_folders() {
        let path = join(folder, "cdk.json");
        if let Some(&size) = listing.files.get(&path) {
            let app = (size <= MAX_READ_BYTES)
                .then(|| read(&path))
                .flatten()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|v| v.get("app").and_then(|a| a.as_str()).map(str::to_owned));
            let reason = match app {
                Some(app) => format!("CDK: {path} found (app: {app})"),
                None => format!("CDK: {path} found"),
            };
            return Ok(found(IacType::Cdk, None, folder, reason));
        }
    }
    for folder in iac_folders() {
        let tf: Vec<&str> = listing
            .names_in(folder)
            .filter(|n| n.ends_with(".tf") || n.ends_with(".tf.json"))
            .collect();
        if !tf.is_empty() {
            let shown: Vec<&str> = tf.iter().take(3).copied().collect();
            let more = if tf.len() > 3 { ", …" } else { "" };
            let s = if tf.len() == 1 { "" } else { "s" };
            let reason = format!(
                "Terraform: {} .tf file{s} in {} ({}{more})",
                tf.len(),
                display_folder(folder),
                shown.join(", ")
            );
            return Ok(found(IacType::Terraform, None, folder, reason));
        }
    }
    for folder in std::iter::once("").chain(FUNCTION_FOLDERS.iter().copied()) {
        if let Some(detected) = plain_function(&listing, folder) {
            return Ok(detected);
        }
    }
    Err(not_found(&templates))
}

fn found(iac: IacType, template: Option<&str>, folder: &str, reason: String) -> Detected {
    Detected {
        iac,
        template: template.map(str::to_owned),
        folder: display_folder(folder).to_owned(),
        reason,
        function: None,
    }
}

fn not_found(templates: &Templates) -> NotFound {
    let mut looked_for = String::from(
        "no infrastructure-as-code found: looked for a SAM or CloudFormation template \
         (template/cloudformation/stack .yaml/.yml/.json), cdk.json, *.tf, a Node function \
         (package.json with index.js or handler.js), a Python function (lambda_function.py, \
         app.py, handler.py)",
    );
    looked_for.push_str(&format!(
        ", in the root and the folders {}",
        IAC_FOLDERS
            .iter()
            .chain(FUNCTION_FOLDERS)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // A template that would have counted but did not parse is worth naming.
    for (path, error) in &templates.errors {
        if cloudformation_name(path.rsplit('/').next().unwrap_or(path)) {
            looked_for.push_str(&format!("; {path} is not a readable template: {error}"));
        }
    }
    NotFound { looked_for }
}

/// The plain function in `folder`, if there is one.
fn plain_function(listing: &Listing, folder: &str) -> Option<Detected> {
    let has = |name: &str| listing.files.contains_key(&join(folder, name));
    const NODE: &[(&str, &str)] = &[
        ("index.js", "index.handler"),
        ("index.mjs", "index.handler"),
        ("index.cjs", "index.handler"),
        ("handler.js", "handler.handler"),
        ("handler.mjs", "handler.handler"),
        ("handler.cjs", "handler.handler"),
    ];
    const PYTHON: &[(&str, &str)] = &[
        ("lambda_function.py", "lambda_function.lambda_handler"),
        ("app.py", "app.lambda_handler"),
        ("handler.py", "handler.handler"),
    ];
    let (runtime, entry, handler, manifest) = if has("package.json")
        && let Some(&(entry, handler)) = NODE.iter().find(|(e, _)| has(e))
    {
        (Runtime::Nodejs, entry, handler, Some("package.json"))
    } else if let Some(&(entry, handler)) = PYTHON.iter().find(|(e, _)| has(e)) {
        let manifest = has("requirements.txt").then_some("requirements.txt");
        (Runtime::Python, entry, handler, manifest)
    } else {
        return None;
    };
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let files = listing
        .files
        .keys()
        .filter(|p| p.starts_with(&prefix))
        .filter(|p| {
            p[prefix.len()..]
                .split('/')
                .all(|s| !s.starts_with('.') && s != "__pycache__")
                && !p.ends_with(".pyc")
        })
        .cloned()
        .collect();
    let entry_path = join(folder, entry);
    let reason = match runtime {
        Runtime::Nodejs => format!(
            "Node function: {} with {entry_path}, handler {handler}",
            join(folder, "package.json")
        ),
        Runtime::Python => format!("Python function: {entry_path}, handler {handler}"),
    };
    Some(Detected {
        iac: IacType::Lambda,
        template: None,
        folder: display_folder(folder).to_owned(),
        reason,
        function: Some(PlainFunction {
            runtime,
            handler: handler.to_owned(),
            entry: entry_path,
            manifest: manifest.map(|m| join(folder, m)),
            files,
        }),
    })
}

/// Whether a file name is one CloudFormation templates go by: its extension is `.template`, or
/// a `-`, `_` or `.` separated part of its stem is `template`, `cloudformation` or `stack`.
fn cloudformation_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let Some((stem, ext)) = template_extension(&lower) else {
        return false;
    };
    ext == "template"
        || stem
            .split(['-', '_', '.'])
            .any(|part| matches!(part, "template" | "cloudformation" | "stack"))
}

/// The stem and extension of a (lowercase) name that may hold a template.
fn template_extension(name: &str) -> Option<(&str, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    matches!(ext, "yaml" | "yml" | "json" | "template")
        .then_some((stem, ext))
        .filter(|(stem, _)| !stem.is_empty())
}

/// Files never read as templates: manifests and tool configuration that are JSON or YAML.
fn never_a_template(name: &str) -> bool {
    matches!(
        name,
        "package.json" | "package-lock.json" | "cdk.json" | "cdk.context.json" | "composer.json"
    ) || name.starts_with("tsconfig")
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

fn display_folder(folder: &str) -> &str {
    if folder.is_empty() { "." } else { folder }
}

/// The listing, normalized and sorted.
struct Listing {
    /// Path → size, without leading `./`, hidden and build-output folders dropped.
    files: BTreeMap<String, u64>,
}

impl Listing {
    fn new(files: &[RepoFile]) -> Listing {
        let mut map = BTreeMap::new();
        for f in files {
            let path = f.path.replace('\\', "/");
            let path = path.trim_start_matches("./").trim_start_matches('/');
            let mut segments = path.split('/');
            segments.next_back();
            if path.is_empty()
                || path
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..")
                || segments.any(|s| s.starts_with('.') || SKIPPED_FOLDERS.contains(&s))
            {
                continue;
            }
            map.insert(path.to_owned(), f.size);
        }
        Listing { files: map }
    }

    /// The names of the files directly in `folder` (`""` for the root), sorted.
    fn names_in<'a>(&'a self, folder: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.files.keys().filter_map(move |p| {
            let rest = if folder.is_empty() {
                p.as_str()
            } else {
                p.strip_prefix(folder)?.strip_prefix('/')?
            };
            (!rest.contains('/')).then_some(rest)
        })
    }

    /// Paths of the possible templates directly in `folder` whose names pass `filter`:
    /// `template.yaml`, `template.yml`, `template.json` first, then the rest by name.
    fn template_candidates(&self, folder: &str, filter: impl Fn(&str) -> bool) -> Vec<String> {
        let mut names: Vec<&str> = self
            .names_in(folder)
            .filter(|n| template_extension(&n.to_ascii_lowercase()).is_some())
            .filter(|n| !n.starts_with('.'))
            .filter(|n| !never_a_template(n) && filter(n))
            .collect();
        const FIRST: [&str; 3] = ["template.yaml", "template.yml", "template.json"];
        names.sort_by_key(|n| (FIRST.iter().position(|f| f == n).unwrap_or(FIRST.len()), *n));
        names.into_iter().map(|n| join(folder, n)).collect()
    }
}

/// Templates read so far (each file is read and parsed once), and why others could not be.
#[derive(Default)]
struct Templates {
    parsed: BTreeMap<String, Option<serde_json::Value>>,
    errors: BTreeMap<String, String>,
}

impl Templates {
    fn read(
        &mut self,
        listing: &Listing,
        path: &str,
        read: &mut impl FnMut(&str) -> Option<String>,
    ) -> Option<&serde_json::Value> {
        if !self.parsed.contains_key(path) {
            let small = listing
                .files
                .get(path)
                .is_some_and(|&s| s <= MAX_READ_BYTES);
            let value = match small.then(|| read(path)).flatten() {
                Some(text) => match parse_template(&text) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        self.errors.insert(path.to_owned(), e.to_string());
                        None
                    }
                },
                None => None,
            };
            self.parsed.insert(path.to_owned(), value);
        }
        self.parsed.get(path).and_then(Option::as_ref)
    }
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;
