//! Deploying a repository to AWS, the pure decisions. The deployer clones the repository and
//! then:
//!
//! 1. [`detect::detect`] on the clone's listing (reading the few small files it asks for) says
//!    how the repository is deployed: SAM, CloudFormation, CDK, Terraform or a plain function.
//! 2. For SAM and CloudFormation, [`template::parse_template`] reads the template (short-form
//!    tags as long forms), [`package::find_artifacts`] names the local code to zip and upload,
//!    [`package::rewrite`] points the template at the uploads, and [`template::template_body`]
//!    is the change set's `TemplateBody` (with [`template::required_capabilities`]; above
//!    [`template::TEMPLATE_BODY_MAX_BYTES`] it goes to S3 as a `TemplateURL`).
//! 3. Once the stack is up, [`sanity::plan`] turns its resources and outputs into sanity tests,
//!    and the `judge_*` functions of [`sanity`] decide each one from the call's answer.
//!
//! [`request`] checks the API's requests and makes the run a session is.
//!
//! Nothing here reads files, calls AWS or waits.

pub mod detect;
pub mod package;
pub mod request;
pub mod sanity;
pub mod template;
