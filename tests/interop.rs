//! Claude Code interop through the real binary: `pai import skill` reads both PAI
//! dialects into `.pai` skills that check clean, `pai export claude` writes skills
//! within agentskills.io's limits, and each direction round-trips through the other.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::scratch::Scratch;

use pai::interop::import;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("pai runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The skill declared in a `.pai` text: name, description, triggers, workflows.
fn pai_skill(source: &str) -> (String, String, Vec<String>, Vec<String>) {
    let parsed = pai::syntax::parse(source);
    for item in parsed.file.items {
        if let pai::syntax::ast::Item::Skill(skill) = item {
            let description = skill
                .settings
                .iter()
                .find_map(|s| match &s.value {
                    pai::syntax::ast::Value::Text(t) if s.key.name == "description" => {
                        Some(t.value.clone())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            return (
                skill.name.name,
                description,
                skill.triggers.into_iter().map(|t| t.value).collect(),
                skill.workflows.into_iter().map(|w| w.name).collect(),
            );
        }
    }
    panic!("no skill in\n{source}")
}

#[test]
fn the_use_when_dialect_imports_its_triggers_and_workflow_files() {
    let scratch = Scratch::new("interop-dialect-use-when");
    let out = scratch.path("research.pai");
    let output = pai(&[
        "import",
        "skill",
        "tests/fixtures/claude-skills/Research",
        "-o",
        &out,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let source = std::fs::read_to_string(&out).expect("written");
    let (name, description, triggers, workflows) = pai_skill(&source);
    assert_eq!(name, "research");
    assert_eq!(description, "Multi-source research with parallel agents");
    assert_eq!(
        triggers,
        [
            "do research",
            "research X",
            "investigate",
            "find information about"
        ]
    );
    assert_eq!(workflows, ["extensive-research", "quick-research"]);
    assert!(
        source.contains("tools    [Read, WebSearch, WebFetch]"),
        "{source}"
    );
    // Handlebars in the Markdown stays text.
    assert!(
        source.contains("Templates like \\{{this}} stay literal."),
        "{source}"
    );
    let check = pai(&["check", "--deny", "warnings", &out]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
}

#[test]
fn the_routing_table_dialect_imports_workflows_in_order_with_their_triggers() {
    let skill =
        import::read(&root().join("tests/fixtures/claude-skills/Art/SKILL.md")).expect("reads");
    assert_eq!(skill.name, "art");
    assert_eq!(skill.description, "Visual content system");
    assert_eq!(
        skill.triggers,
        [
            "art",
            "header images",
            "visualizations",
            "diagrams",
            "blog header",
            "technical diagram"
        ]
    );
    let names: Vec<&str> = skill.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["essay", "technical-diagrams"]);
    assert!(skill.workflows[1].steps.contains("boxes and arrows"));
    assert!(
        !skill.context.contains("| **Essay**"),
        "the table is routing, not context"
    );
    assert!(skill.context.contains("Charcoal architectural sketch"));
}

#[test]
fn exported_skills_keep_agentskills_limits_and_import_back_unchanged() {
    let scratch = Scratch::new("interop-library");
    let out = scratch.path("claude");
    let output = pai(&["export", "claude", &out]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let mut seen = 0;
    for (path, source) in pai::stdlib::FILES
        .iter()
        .filter(|(p, _)| p.starts_with("skills/"))
    {
        let (name, description, triggers, workflows) = pai_skill(source);
        let folder = Path::new(&out).join(&name);
        let skill_md = std::fs::read_to_string(folder.join("SKILL.md")).expect("SKILL.md");
        let (front, _) = pai::interop::front_matter(&skill_md);
        let field = |key: &str| front.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let exported_name = field("name").expect("a name");
        assert_eq!(exported_name, name, "{path}: the name equals its folder");
        assert!(exported_name.len() <= 64);
        assert!(exported_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(field("description").expect("a description").chars().count() <= 1024);
        for workflow in &workflows {
            assert!(
                folder
                    .join("workflows")
                    .join(format!("{workflow}.md"))
                    .is_file(),
                "{path}: {workflow}"
            );
        }
        assert!(folder.join("agents").read_dir().expect("agents/").count() > 0);

        let back = import::read(&folder).expect("imports");
        assert_eq!(back.name, name, "{path}");
        assert_eq!(back.description, description, "{path}");
        assert_eq!(back.triggers, triggers, "{path}");
        let back_workflows: Vec<String> = back.workflows.iter().map(|w| w.name.clone()).collect();
        // Helper workflows (`orchestrate`, `outline`) are exported as files the steps
        // refer to; the routing table lists only the skill's own.
        assert_eq!(back_workflows, workflows, "{path}");
        seen += 1;
    }
    assert_eq!(seen, 5);
    let agent = std::fs::read_to_string(Path::new(&out).join("pai-orchestrate/agents/coder.md"))
        .expect("coder.md");
    assert!(agent.starts_with("---\nname: coder\n"), "{agent}");
    assert!(agent.contains("tools: Read, Edit\n"), "{agent}");
    assert!(agent.contains("model: sonnet\n"), "{agent}");
}

#[test]
fn an_imported_skill_exports_and_imports_back_to_the_same_skill() {
    let scratch = Scratch::new("interop-markdown");
    for fixture in ["Research", "Art"] {
        let first = import::read(&root().join("tests/fixtures/claude-skills").join(fixture))
            .expect("reads");
        let pai_file = scratch.path(&format!("{fixture}.pai"));
        let output = pai(&[
            "import",
            "skill",
            &format!("tests/fixtures/claude-skills/{fixture}"),
            "-o",
            &pai_file,
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let out = scratch.path(&format!("out-{fixture}"));
        let output = pai(&["export", "claude", &out, &pai_file]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let again = import::read(&Path::new(&out).join(&first.name)).expect("imports back");
        assert_eq!(again.name, first.name);
        assert_eq!(again.description, first.description);
        assert_eq!(again.triggers, first.triggers);
        let names = |s: &import::MarkdownSkill| {
            s.workflows
                .iter()
                .map(|w| w.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&again), names(&first));
    }
}

#[test]
fn a_missing_skill_file_is_a_usage_error() {
    let output = pai(&["import", "skill", "tests/fixtures/claude-skills/Nothing"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("cannot read"), "{}", text(&output));
}

#[test]
fn hostile_skill_files_import_safely_and_still_check() {
    let scratch = Scratch::new("interop-hostile");
    let skill = scratch.0.join("Odd");
    std::fs::create_dir_all(skill.join("workflows")).expect("mkdir");
    std::fs::write(scratch.0.join("secret.md"), "TOP SECRET").expect("write");
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: Odd\ndescription: Odd things: a test. USE WHEN \"odd\"\n---\n\nSpeak as {{DA}}.\n\n| Workflow | File |\n|---|---|\n| Leak | ../secret.md |\n| Passwd | /etc/passwd |\n",
    )
    .expect("write");
    std::fs::write(skill.join("workflows/If.md"), "Decide.").expect("write");
    std::fs::write(skill.join("workflows/Odd.md"), "Be odd.").expect("write");
    let imported = import::read(&skill).expect("reads");
    let names: Vec<&str> = imported.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["leak", "passwd"]);
    assert!(imported
        .workflows
        .iter()
        .all(|w| !w.steps.contains("TOP SECRET")));
    assert!(imported
        .workflows
        .iter()
        .all(|w| !w.steps.contains("root:")));
    let out = scratch.path("odd.pai");
    let output = pai(&[
        "import",
        "skill",
        skill.to_str().expect("utf-8"),
        "-o",
        &out,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let check = pai(&["check", "--deny", "warnings", &out]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    // Without a table every workflow file counts: reserved words and the skill's own
    // name are renamed so the file still parses and checks.
    std::fs::write(
        skill.join("SKILL.md"),
        "---\nname: Odd\ndescription: Odd. USE WHEN \"odd\"\n---\n\nBody.\n",
    )
    .expect("write");
    let imported = import::read(&skill).expect("reads");
    let names: Vec<&str> = imported.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["if-workflow", "odd-workflow"]);
    // `-o` never overwrites without `--force` (`-o` naming the SKILL.md replaced it).
    let before = std::fs::read_to_string(&out).expect("the first import");
    let refused = pai(&[
        "import",
        "skill",
        skill.to_str().expect("utf-8"),
        "-o",
        &out,
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("exists already"),
        "{}",
        text(&refused)
    );
    assert_eq!(std::fs::read_to_string(&out).expect("kept"), before);
    let output = pai(&[
        "import",
        "skill",
        skill.to_str().expect("utf-8"),
        "-o",
        &out,
        "--force",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let check = pai(&["check", "--deny", "warnings", &out]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
}

/// An export writes nothing over what is there (a hand-written `SKILL.md` was replaced
/// without a word) unless `--force`, and refuses two things that would become one
/// file (skills `my_skill` and `my-skill`, agents `a_b` and `a-b`), before it writes
/// anything.
#[test]
fn an_export_never_overwrites_and_refuses_names_that_collide() {
    let scratch = Scratch::new("interop-overwrite");
    let skill = |name: &str, agents: &[&str]| {
        let mut text = String::new();
        for agent in agents {
            text.push_str(&format!(
                "agent {agent}(x: text max 10) {{\n  context 1k\n  summary 10\n  prompt \"{{{{x}}}}\"\n}}\n\n"
            ));
        }
        let calls: Vec<String> = agents.iter().map(|a| format!("{a}(x: x)")).collect();
        text.push_str(&format!(
            "workflow go(x: text max 10) -> list<result> {{\n  return [{}]\n}}\n\nskill {name} {{\n  use when \"{name} please\"\n  workflow go\n}}\n",
            calls.join(", ")
        ));
        text
    };
    let one = scratch.path("one.pai");
    std::fs::write(&one, skill("my-skill", &["helper"])).expect("written");
    let out = scratch.path("out");
    let mine = Path::new(&out).join("my-skill/SKILL.md");
    std::fs::create_dir_all(mine.parent().expect("a parent")).expect("dir");
    std::fs::write(&mine, "my own notes").expect("written");

    let refused = pai(&["export", "claude", &out, &one]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("exists already"),
        "{}",
        text(&refused)
    );
    assert!(text(&refused).contains("--force"), "{}", text(&refused));
    assert_eq!(
        std::fs::read_to_string(&mine).expect("kept"),
        "my own notes"
    );
    assert!(
        !Path::new(&out).join("my-skill/agents").exists(),
        "nothing written"
    );

    let forced = pai(&["export", "claude", &out, &one, "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    assert!(std::fs::read_to_string(&mine)
        .expect("written")
        .starts_with("---\nname: my-skill"));

    let two = scratch.path("two.pai");
    std::fs::write(&two, skill("my_skill", &["helper"])).expect("written");
    let fresh = scratch.path("fresh");
    let clash = pai(&["export", "claude", &fresh, &one, &two]);
    assert_eq!(clash.status.code(), Some(2), "{}", text(&clash));
    assert!(
        text(&clash).contains("skill `my-skill` of")
            && text(&clash).contains("skill `my_skill` of"),
        "{}",
        text(&clash)
    );
    assert!(!Path::new(&fresh).exists(), "nothing written");

    let agents = scratch.path("agents.pai");
    std::fs::write(&agents, skill("pair", &["a_b", "a-b"])).expect("written");
    let clash = pai(&["export", "claude", &fresh, &agents]);
    assert_eq!(clash.status.code(), Some(2), "{}", text(&clash));
    assert!(text(&clash).contains("agents/a-b.md"), "{}", text(&clash));
}

/// Skills whose name or tools are reserved words, or whose Markdown holds a backslash
/// before `{{`, import into files that check (each ended in "the imported skill does
/// not check; this is a bug in `pai import`").
#[test]
fn skills_named_like_keywords_import_into_files_that_check() {
    let scratch = Scratch::new("interop-keywords");
    for (folder, front, body) in [
        ("named-let", "name: let", "Body."),
        ("tool-for", "name: tooly\nallowed-tools: Read, for", "Body."),
        ("backslash", "name: esc", "Body with \\{{x}} in it."),
    ] {
        let dir = Path::new(&scratch.path(folder)).to_path_buf();
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("SKILL.md"),
            format!(
                "---\n{front}\ndescription: Does things. USE WHEN \"do things\"\n---\n\n{body}\n"
            ),
        )
        .expect("written");
        let output = pai(&["import", "skill", dir.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(0), "{folder}: {}", text(&output));
    }
}
