//! A checked-out repository deployed: what it is (the core's detection, its reason in the
//! log), then SAM and CloudFormation packaged (local code zipped and uploaded to the artifacts
//! bucket, the template rewritten) and deployed as a stack; a plain function created or
//! updated; CDK and Terraform deployed by their own CLIs when installed.

use crate::stack::{Deployed, Resource};
use crate::{Aws, AwsError, Log, artifacts, function, stack};
use gantry_core::deploy::detect::{self, Detected, IacType, RepoFile};
use gantry_core::deploy::{package, template};
use std::collections::BTreeMap;
use std::path::Path;

/// How deep the repository is listed for detection (the root and well-known folders).
const LIST_DEPTH: usize = 2;

/// What a deploy made.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Deployment {
    /// `sam`, `cloudformation`, `lambda`, `cdk` or `terraform`.
    pub iac_type: String,
    /// The stack already matched the template (an empty change set).
    pub unchanged: bool,
    pub stack_name: String,
    pub resources: Vec<Resource>,
    pub outputs: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Nothing deployable (the text says what was looked for), or it cannot be deployed here.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Where a deploy finds the tools it runs (`cdk`, `terraform`, `npm`, `pip`): a `PATH`.
#[derive(Debug, Clone)]
pub struct Tools {
    pub path: std::ffi::OsString,
}

impl Tools {
    /// This process's `PATH`.
    pub fn from_env() -> Tools {
        Tools {
            path: std::env::var_os("PATH").unwrap_or_default(),
        }
    }
}

/// Deploys the repository checked out at `dir` as `stack_name`; `change_set` names this
/// deploy's change set (unique per session).
pub async fn deploy(
    aws: &Aws,
    dir: &Path,
    stack_name: &str,
    change_set: &str,
    tools: &Tools,
    log: &Log<'_>,
) -> Result<Deployment, DeployError> {
    let files = list(dir);
    let detected = detect::detect(&files, |p| std::fs::read_to_string(dir.join(p)).ok())
        .map_err(|e| DeployError::Refused(e.to_string()))?;
    log(&format!("detected {}", detected.reason));
    let iac_type = iac_name(detected.iac).to_string();
    let done = match detected.iac {
        IacType::Sam | IacType::CloudFormation => {
            stack_from_template(aws, dir, &detected, stack_name, change_set, log).await?
        }
        IacType::Lambda => plain_function(aws, dir, &detected, stack_name, tools, log).await?,
        IacType::Cdk => {
            tool(
                tools,
                dir,
                &detected.folder,
                "cdk",
                &["deploy", "--all", "--require-approval", "never"],
                log,
            )
            .await?;
            stack::describe(&aws.cloudformation, stack_name)
                .await
                .unwrap_or_default()
        }
        IacType::Terraform => {
            tool(
                tools,
                dir,
                &detected.folder,
                "terraform",
                &["init", "-input=false"],
                log,
            )
            .await?;
            tool(
                tools,
                dir,
                &detected.folder,
                "terraform",
                &["apply", "-auto-approve", "-input=false"],
                log,
            )
            .await?;
            Deployed::default()
        }
    };
    Ok(Deployment {
        iac_type,
        unchanged: done.unchanged,
        stack_name: stack_name.to_string(),
        resources: done.resources,
        outputs: done.outputs,
    })
}

fn iac_name(iac: IacType) -> &'static str {
    match iac {
        IacType::Sam => "sam",
        IacType::CloudFormation => "cloudformation",
        IacType::Lambda => "lambda",
        IacType::Cdk => "cdk",
        IacType::Terraform => "terraform",
    }
}

/// The repository's files down to [`LIST_DEPTH`] folders (`.git`, `node_modules` left out).
fn list(dir: &Path) -> Vec<RepoFile> {
    fn walk(root: &Path, d: &Path, depth: usize, out: &mut Vec<RepoFile>) {
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if name == ".git" || name == "node_modules" {
                continue;
            }
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth + 1 < LIST_DEPTH + 1 {
                    walk(root, &path, depth + 1, out);
                }
            } else if meta.is_file()
                && let Ok(rel) = path.strip_prefix(root)
            {
                out.push(RepoFile {
                    path: rel.to_string_lossy().replace('\\', "/"),
                    size: meta.len(),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, 0, &mut out);
    out
}

async fn stack_from_template(
    aws: &Aws,
    dir: &Path,
    detected: &Detected,
    stack_name: &str,
    change_set: &str,
    log: &Log<'_>,
) -> Result<Deployed, DeployError> {
    let path = detected
        .template
        .as_deref()
        .ok_or_else(|| DeployError::Refused("detection named no template".into()))?;
    let text = std::fs::read_to_string(dir.join(path))
        .map_err(|e| DeployError::Refused(format!("cannot read {path}: {e}")))?;
    let parsed = template::parse_template(&text)
        .map_err(|e| DeployError::Refused(format!("{path}: {e}")))?;
    let missing = template::parameters_without_default(&parsed);
    if !missing.is_empty() {
        return Err(DeployError::Refused(format!(
            "{path}: parameters without a default need values, which a deploy does not take: {}",
            missing.join(", ")
        )));
    }
    let found =
        package::find_artifacts(&parsed, path).map_err(|e| DeployError::Refused(e.to_string()))?;
    let mut uploads = BTreeMap::new();
    if !found.is_empty() {
        let bucket = artifacts::bucket(aws, log).await?;
        for a in &found {
            if uploads.contains_key(&a.local) {
                continue;
            }
            let local = dir.join(&a.local);
            let zip = if local.is_file() && (a.local.ends_with(".zip") || a.local.ends_with(".jar"))
            {
                std::fs::read(&local)
                    .map_err(|e| DeployError::Refused(format!("cannot read {}: {e}", a.local)))?
            } else {
                artifacts::zip_path(&local).map_err(DeployError::Refused)?
            };
            let key = artifacts::key_for(stack_name, &zip);
            let size = zip.len();
            let new = artifacts::upload(aws, &bucket, &key, zip).await?;
            log(&format!(
                "{} {} ({} bytes) for {} as s3://{bucket}/{key}",
                if new { "uploaded" } else { "already uploaded" },
                a.local,
                size,
                a.resource
            ));
            uploads.insert(
                a.local.clone(),
                package::S3Location {
                    bucket: bucket.clone(),
                    key,
                },
            );
        }
    }
    let packaged = package::rewrite(&parsed, path, &uploads)
        .map_err(|e| DeployError::Refused(e.to_string()))?;
    let body = template::template_body(&packaged);
    if body.len() > template::TEMPLATE_BODY_MAX_BYTES {
        return Err(DeployError::Refused(format!(
            "{path}: the packaged template is {} bytes, over CloudFormation's {} for a template body",
            body.len(),
            template::TEMPLATE_BODY_MAX_BYTES
        )));
    }
    Ok(stack::deploy(&aws.cloudformation, stack_name, &body, change_set, log).await?)
}

async fn plain_function(
    aws: &Aws,
    dir: &Path,
    detected: &Detected,
    name: &str,
    tools: &Tools,
    log: &Log<'_>,
) -> Result<Deployed, DeployError> {
    let f = detected
        .function
        .as_ref()
        .ok_or_else(|| DeployError::Refused("detection named no function".into()))?;
    let folder = dir.join(&detected.folder);
    if let Some(manifest) = &f.manifest {
        install(tools, &folder, manifest, log).await?;
    }
    let zip = artifacts::zip_path(&folder).map_err(DeployError::Refused)?;
    let made =
        function::deploy(aws, name, f.runtime.lambda_runtime(), &f.handler, zip, log).await?;
    Ok(Deployed {
        stack_id: String::new(),
        status: if made.created { "CREATED" } else { "UPDATED" }.into(),
        resources: vec![
            Resource {
                resource_type: "AWS::Lambda::Function".into(),
                logical_id: name.to_string(),
                physical_id: made.name.clone(),
            },
            Resource {
                resource_type: "AWS::IAM::Role".into(),
                logical_id: format!("{name}-role"),
                physical_id: made.role_arn.clone(),
            },
        ],
        outputs: vec![("FunctionArn".into(), made.arn)],
        unchanged: false,
    })
}

/// The function's dependencies, when its manifest declares any.
async fn install(
    tools: &Tools,
    folder: &Path,
    manifest: &str,
    log: &Log<'_>,
) -> Result<(), DeployError> {
    let name = Path::new(manifest)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let text = std::fs::read_to_string(folder.join(name)).unwrap_or_default();
    let wants = |l: &str| !l.trim().is_empty() && !l.trim().starts_with('#');
    let (program, args): (&str, &[&str]) = match name {
        "package.json" => {
            let deps = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("dependencies")
                        .and_then(|d| d.as_object())
                        .map(|d| d.len())
                })
                .unwrap_or(0);
            if deps == 0 || folder.join("node_modules").exists() {
                return Ok(());
            }
            ("npm", &["install", "--omit=dev", "--no-audit", "--no-fund"])
        }
        "requirements.txt" if text.lines().any(wants) => {
            ("pip", &["install", "-r", "requirements.txt", "-t", "."])
        }
        _ => return Ok(()),
    };
    tool(tools, folder, ".", program, args, log).await?;
    Ok(())
}

/// Runs `program args` in `dir/folder`, its output in the log; refused when it is not
/// installed, failed when it fails.
async fn tool(
    tools: &Tools,
    dir: &Path,
    folder: &str,
    program: &str,
    args: &[&str],
    log: &Log<'_>,
) -> Result<(), DeployError> {
    let cwd = dir.join(folder);
    log(&format!("$ {program} {}", args.join(" ")));
    let out = tokio::process::Command::new(program)
        .args(args)
        .env("PATH", &tools.path)
        .current_dir(&cwd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DeployError::Refused(format!(
                "`{program}` is not installed on this host: install it to deploy this repository"
            )));
        }
        Err(e) => return Err(DeployError::Refused(format!("cannot run {program}: {e}"))),
    };
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
    {
        log(line);
    }
    if out.status.success() {
        Ok(())
    } else {
        Err(DeployError::Refused(format!(
            "{program} {} failed ({})",
            args.first().unwrap_or(&""),
            out.status
        )))
    }
}
