"""The archive's RO-Crate: packed files and per-job provenance records as a Workflow Run RO-Crate.

Why a module of its own: the crate is what makes an archive checkable by tools other than ours.
It is built with the ``rocrate`` library, which writes the JSON-LD: the metadata descriptor and root
dataset, typed entities (``File``, ``Dataset``, ``ComputationalWorkflow`` with its
``ComputerLanguage``, ``Person``, ``SoftwareApplication``, ``CreativeWork``), references between
them, actions (``add_action``), the compact form of single values (``append_to(...,
compact=True)``) and ``ro-crate-metadata.json`` itself (``metadata.stream``). What is ours is what
the library cannot know: which entities a run has and how they link. The crate follows Workflow
Run RO-Crate 0.5 (RO-Crate 1.1, Workflow RO-Crate 1.0) and declares the profiles of
:data:`parallel_scaling.archive.profiles.PROFILES`; ``verify-archive`` checks them. Its graph:

* main entity: the Snakefile, a ``File``/``SoftwareSourceCode``/``ComputationalWorkflow``/``HowTo``
  in the Snakemake language (conforming to the Bioschemas ComputationalWorkflow profile), with one
  ``HowToStep`` per Snakemake rule that ran (``step``) and each rule's tool in ``hasPart``: the
  ``SoftwareApplication`` ``python -m parallel_scaling <command>``, whose ``url`` is its source file
  in the crate and whose ``softwareRequirements`` are the package versions it ran with (PyPI ids);
* one ``CreateAction`` for the whole run (instrument: the workflow; object: the config files, the
  overrides, the merged config and the inputs no job produced; result: every result file) inside an
  ``OrganizeAction`` of Snakemake;
* one ``CreateAction`` per job, from its ``*.prov.json`` record (:mod:`parallel_scaling.jobs.
  provenance`): agent, start/end time, status, ``object`` = its inputs, seeds and settings,
  ``result`` = its outputs packed with the same SHA-256, ``instrument`` = its tool; a
  ``ControlAction`` ties it to its rule's step. The record file itself is ``about`` its action.
  Every action is in the root's ``mentions``;
* the agent of each action is a ``Person``: the study's agent (with an id, e.g. an ORCID) if named,
  else the login name recorded with the job; the same person is the crate's ``author``. The license
  is an SPDX id; the organization, if named, is the agent's affiliation and the crate's publisher;
* every packed file as a ``File`` with ``sha256``, ``contentSize`` and ``encodingFormat``; the
  results directory as a ``Dataset``. Inputs outside the archive (models, datasets) are
  ``CreativeWork`` entities with their original path and SHA-256, to check a copy against;
* model weights archived by reference (:mod:`.members`) as RO-Crate 1.2 describes "physical files
  which are deliberately not present" (Data Entities, File Data Entity): a ``File`` whose ``@id`` is
  a local identifier, ``#`` plus its path (so it is not a Data Entity and no validator looks for it
  in the payload), with ``localPath`` (the path relative to the run's working directory where it
  can be found, term ``https://w3id.org/ro/terms#localPath`` of the RO-Crate 1.2 context, declared
  here as this crate is 1.1), ``sha256``, ``contentSize`` and ``encodingFormat``; all of them parts
  of the ``Dataset`` ``#model-weights`` in the root's ``hasPart``. Jobs' actions link them like
  packed files (a checkpoint's weights are its training job's ``result`` and its evaluation's
  ``object``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from rocrate.model import ComputationalWorkflow, ContextEntity, CreativeWork, Entity, Person, SoftwareApplication
from rocrate.rocrate import ROCrate
from rocrate.utils import as_list, get_norm_value

from parallel_scaling.archive import ArchiveError
from parallel_scaling.archive.members import Member, describe, expand, media_type
from parallel_scaling.archive.profiles import PROFILES, PROVENANCE_PROFILE
from parallel_scaling.archive.records import (iso_ms, most_common, now, package_version, resolve_record_path,
                                                unresolved_failures,
                                                workflow_version)
from parallel_scaling.commands import COMMANDS
from parallel_scaling.jobs.provenance import login_name

WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
BIOSCHEMAS_WORKFLOW = "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"
COMPLETED = "http://schema.org/CompletedActionStatus"
#: RO-Crate 1.2's term for where a file that is not in the payload can be found
LOCAL_PATH_TERM = "https://w3id.org/ro/terms#localPath"
#: the Dataset that groups the files archived by reference
WEIGHTS_SET_ID = "#model-weights"
FAILED = "http://schema.org/FailedActionStatus"

@dataclass
class Packed:
    """A member after it was written to the tarball, with what was measured while writing it."""

    member: Member
    sha256: str
    size: int


@dataclass(frozen=True)
class Attribution:
    """Who ran the study and under which terms the archive is shared."""

    license_id: str | None = None
    agent: str | None = None
    agent_id: str | None = None
    organization: str | None = None  # the agent's affiliation and the archive's publisher
    organization_id: str | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _compact(entities: list[Entity]) -> Entity | list[Entity] | None:
    """A property value in RO-Crate's compact form: one entity as itself, none as no value."""
    return entities[0] if len(entities) == 1 else (entities or None)


def _unique(entities: Any) -> list[Entity]:
    out: list[Entity] = []
    for e in entities:
        if all(e.id != o.id for o in out):
            out.append(e)
    return out


def reference_id(name: str) -> str:
    """The crate id of a file archived by reference: ``#`` and its path (a local identifier, so
    not a Data Entity the payload must hold; RO-Crate 1.2, File Data Entity)."""
    return "#" + quote(name, safe="/")


class CrateBuilder:
    """Turns packed files and provenance records into the RO-Crate graph (see the module docstring)."""

    def __init__(self, packed: list[Packed], name: str, attribution: Attribution,
                 records: list[dict[str, Any]], referenced: list[Packed] | None = None):
        self.crate = crate = ROCrate(version="1.1")
        crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
        crate.metadata.extra_terms["sha256"] = "http://schema.org/sha256"
        self.packed = packed
        self.referenced = list(referenced or [])
        if self.referenced:
            crate.metadata.extra_terms["localPath"] = LOCAL_PATH_TERM
        self.attribution = attribution
        both = [*packed, *self.referenced]
        self.by_source: dict[str, Packed] = {str(p.member.source): p for p in both}
        self.by_name: dict[str, Packed] = {p.member.name: p for p in both}
        self.files: dict[str, Entity] = {}
        crate.name = name
        crate.description = ("Results, logs, configuration, code and per-job provenance of one run of the "
                             "parallel-scaling Snakemake workflow.")
        crate.datePublished = now()
        if attribution.license_id:
            lid = attribution.license_id
            url = f"https://spdx.org/licenses/{lid}"
            crate.license = self.entity(CreativeWork, url, {"name": lid, "identifier": lid, "url": url})
        # the Provenance Run Crate profile describes tool runs: declared only when there are some
        crate.root_dataset["conformsTo"] = [
            self.entity(CreativeWork, uri, {"name": p.name, "version": p.version})
            for uri, p in PROFILES.items() if records or uri != PROVENANCE_PROFILE]
        self.organization = None
        if attribution.organization:
            oid = attribution.organization_id or f"#organization-{_slug(attribution.organization)}"
            props: dict[str, Any] = {"@type": "Organization", "name": attribution.organization}
            if attribution.organization_id:
                props["url"] = attribution.organization_id
            self.organization = crate.publisher = self.entity(ContextEntity, oid, props)
        self.run_agent = self.person(attribution.agent, attribution.agent_id) if attribution.agent else \
            self.person(most_common(r.get("user") for r in records) or login_name() or "unknown")
        crate.root_dataset["author"] = self.run_agent

    def entity(self, cls: type[Entity], identifier: str, properties: dict[str, Any]) -> Entity:
        """The crate's entity with this id, added as a ``cls`` if new (ids are shared between
        records, e.g. package versions)."""
        existing = self.crate.get(identifier)
        return existing if existing is not None else self.crate.add(cls(self.crate, identifier, properties))

    def person(self, name: str, identifier: str | None = None) -> Entity:
        """A Person: ``identifier`` (e.g. an ORCID URL) as its id, else one from the name;
        affiliated with the study's organization when one is named."""
        props: dict[str, Any] = {"name": name}
        if self.organization is not None:
            props["affiliation"] = self.organization
        return self.entity(Person, identifier or f"#person-{_slug(name)}", props)

    def agent_of(self, rec: dict[str, Any]) -> Entity:
        """Who ran a job: the study's agent if named, else the login name recorded with the job."""
        if self.attribution.agent or not rec.get("user"):
            return self.run_agent
        return self.person(str(rec["user"]))

    # -- data entities --------------------------------------------------------------------

    def add_files(self, records: list[dict[str, Any]]) -> Entity:
        """Add every packed file; returns the main workflow entity."""
        workflow = None
        engine_version = most_common((r.get("packages") or {}).get("snakemake") for r in records) \
            or package_version("snakemake")
        for item in self.packed:
            m = item.member
            props: dict[str, Any] = {"name": m.name, "sha256": item.sha256, "contentSize": str(item.size),
                                     "encodingFormat": media_type(m.name)}
            if m.role == "workflow":
                # HowTo: the Provenance Run Crate profile requires it of a workflow with steps
                props["@type"] = [*ComputationalWorkflow.TYPES, "HowTo"]
                workflow = self.crate.add_workflow(
                    source=m.source, dest_path=m.name, main=True, lang="snakemake",
                    lang_version=engine_version, properties=props)
                self.files[m.name] = workflow
                continue
            props["description"] = describe(m)
            if m.role == "readme":
                props["about"] = self.crate.root_dataset
            self.files[m.name] = self.crate.add_file(source=m.source, dest_path=m.name, properties=props)
        if workflow is None:
            raise ArchiveError("internal error: no Snakefile was packed")
        self.add_references()
        workflow["name"] = "parallel-scaling Snakemake workflow"
        workflow["conformsTo"] = self.entity(CreativeWork, BIOSCHEMAS_WORKFLOW, {
            "name": "Bioschemas ComputationalWorkflow profile", "version": "1.0-RELEASE"})
        workflow["version"] = workflow_version(records)
        return workflow

    def add_references(self) -> Entity | None:
        """Files archived by reference (model weights), grouped in :data:`WEIGHTS_SET_ID`."""
        if not self.referenced:
            return None
        parts = []
        for item in self.referenced:
            m = item.member
            entity = self.entity(ContextEntity, reference_id(m.name), {
                "@type": "File", "name": m.name, "localPath": m.name, "sha256": item.sha256,
                "contentSize": str(item.size), "encodingFormat": media_type(m.name),
                "description": "Model weights of the run, not included in this archive: the file lies at "
                               "localPath under the run's working directory; `verify-archive --run-dir "
                               "<that directory>` checks its size and sha256."})
            self.files[m.name] = entity
            parts.append(entity)
        group = self.entity(ContextEntity, WEIGHTS_SET_ID, {
            "@type": "Dataset", "name": "Model weights, referenced (not included)",
            "description": f"{len(parts)} files of model weights among the run's results, listed "
                           "by path (localPath, relative to the run's working directory), size and sha256 "
                           "but not included, to keep the archive small (config archive.weights: "
                           "reference). The other files of their checkpoints are included.",
            "hasPart": _compact(parts)})
        self.crate.root_dataset.append_to("hasPart", group, compact=True)
        return group

    def add_results_dataset(self, name: str) -> Entity | None:
        """The results directory as a Dataset whose parts are the packed result files."""
        prefix = name.rstrip("/") + "/"
        parts = [self.files[p.member.name] for p in self.packed
                 if p.member.role in {"result", "report"} and p.member.name.startswith(prefix)]
        if not parts:
            return None
        return self.crate.add_dataset(dest_path=prefix, properties={
            "name": prefix, "description": "Results directory of the run (only the files its jobs wrote "
                                           "or read, when archived from Snakemake's DAG).",
            "hasPart": _compact(parts)})

    def packed_file(self, entry: dict[str, Any], cwd: str | None) -> Entity | None:
        """The packed File for a recorded file, if it was packed with the recorded bytes.

        Looked up by absolute path, then by real path, then by its relative path as a crate id
        (for archives built where the run's mount point differs).
        """
        path = str(entry.get("path", ""))
        absolute = resolve_record_path(path, cwd)
        packed = self.by_source.get(absolute) or self.by_source.get(os.path.realpath(absolute)) \
            or self.by_name.get(PurePosixPath(path).as_posix())
        if packed is not None and packed.sha256 == entry.get("sha256"):
            return self.files[packed.member.name]
        return None

    def file_for(self, entry: dict[str, Any], cwd: str | None) -> Entity:
        """Crate entity for a recorded file: the packed File if same bytes, else an external one."""
        packed = self.packed_file(entry, cwd)
        if packed is not None:
            return packed
        path = str(entry.get("path", ""))
        sha = entry.get("sha256")
        key = hashlib.sha256(f"{resolve_record_path(path, cwd)}\0{sha}".encode()).hexdigest()[:16]
        props: dict[str, Any] = {"name": path, "sha256": sha,
                                 "description": "File used or made by a job but not packed in this "
                                                "archive (or packed with different content)."}
        if entry.get("size") is not None:
            props["contentSize"] = str(entry["size"])
        return self.entity(CreativeWork, f"#file-{key}", props)

    # -- software -------------------------------------------------------------------------

    def package(self, name: str, version: str) -> Entity:
        """A package version as a SoftwareApplication with an absolute id (PyPI, python.org)."""
        if name == "python":
            return self.entity(SoftwareApplication,
                               f"https://www.python.org/downloads/release/python-{version.replace('.', '')}/",
                               {"name": "Python", "softwareVersion": version, "url": "https://www.python.org/"})
        return self.entity(SoftwareApplication, f"https://pypi.org/project/{name}/{version}/", {
            "name": name, "softwareVersion": version, "url": f"https://pypi.org/project/{name}/"})

    def tool(self, command: str, rec: dict[str, Any]) -> Entity:
        """The SoftwareApplication ``python -m parallel_scaling <command>``; its url is its source file
        in the crate (the command's module), its version the package's."""
        identifier = f"#tool-{command}"
        existing = self.crate.get(identifier)
        if existing is not None:
            return existing
        props: dict[str, Any] = {"name": f"parallel_scaling {command}",
                                 "description": f"python -m parallel_scaling {command}"}
        version = rec.get("release") or (rec.get("packages") or {}).get("parallel-scaling") \
            or package_version("parallel-scaling")
        if version:
            props["softwareVersion"] = str(version)
        module = COMMANDS.get(command, ("",))[0].partition(":")[0]  # "train.grpo" -> train/grpo.py
        suffix = f"parallel_scaling/{module.replace('.', '/')}.py"
        source = next((n for n in self.files if module and n.endswith(suffix)), None)
        if source is not None:
            props["url"] = self.files[source]
        return self.entity(SoftwareApplication, identifier, props)

    def engine(self, records: list[dict[str, Any]]) -> Entity:
        version = most_common((r.get("packages") or {}).get("snakemake") for r in records) \
            or package_version("snakemake")
        entity = self.package("snakemake", str(version)) if version else self.entity(
            SoftwareApplication, "https://pypi.org/project/snakemake/", {"name": "snakemake"})
        entity["url"] = "https://snakemake.readthedocs.io"
        entity["description"] = "Snakemake, the workflow engine that ran the jobs"
        return entity

    # -- provenance -----------------------------------------------------------------------

    def add_jobs(self, records: list[tuple[Packed, dict[str, Any], str, list[Path]]], workflow: Entity) -> \
            tuple[list[Entity], list[Entity]]:
        """One CreateAction + ControlAction per job; returns (job actions, controls).

        Each job is (its record, the record, its rule, its outputs as Snakemake declares them). A job's
        ``result`` is what its record hashed after the run, plus its declared outputs that are packed
        (a command that writes files through options other than --out, like qc-table's --csv, has them
        only there).
        """
        crate = self.crate
        steps: dict[str, Entity] = {}
        jobs: list[Entity] = []
        controls: list[Entity] = []
        for packed, rec, rule, declared in sorted(records, key=lambda pr: str(pr[1].get("start_time"))):
            command = str(rec["command"])
            tool = self.tool(command, rec)
            if tool.id not in get_norm_value(workflow, "hasPart"):
                workflow.append_to("hasPart", tool, compact=True)
            if rule not in steps:
                steps[rule] = self.entity(ContextEntity, f"#step-{_slug(rule)}", {
                    "@type": "HowToStep", "name": rule, "position": len(steps), "workExample": tool,
                    "description": f"Snakemake rule {rule}"})
                workflow.append_to("step", steps[rule], compact=True)
            elif tool.id not in get_norm_value(steps[rule], "workExample"):
                steps[rule].append_to("workExample", tool, compact=True)
            known = set(get_norm_value(tool, "softwareRequirements"))
            for name, version in sorted((rec.get("packages") or {}).items()):
                req = self.package(name, str(version)) if version and name != "parallel-scaling" else None
                if req is not None and req.id not in known:
                    tool.append_to("softwareRequirements", req, compact=True)
                    known.add(req.id)
            rid = str(rec.get("id") or uuid.uuid5(uuid.NAMESPACE_URL, packed.member.name))
            cwd = rec.get("cwd")
            objects = _unique(self.file_for(e, cwd) for e in rec.get("inputs") or [])
            objects += self._parameters(rid, rec)
            results = _unique([
                *(f for f in (self.packed_file(e, cwd) for e in rec.get("outputs") or []) if f is not None),
                *(self.files[p.member.name] for p in (self.by_source.get(str(f.resolve()))
                                                      for f in expand(declared)) if p is not None)])
            ok = rec.get("status") == "ok"
            props: dict[str, Any] = {
                "@type": "CreateAction",
                "name": f"Run of {command} ({PurePosixPath(packed.member.name).name})",
                "description": shlex.join(["python", "-m", "parallel_scaling", command,
                                           *map(str, rec.get("argv") or [])]),
                "startTime": iso_ms(rec.get("start_time")), "endTime": iso_ms(rec.get("end_time")),
                "actionStatus": COMPLETED if ok else FAILED,
                "agent": self.agent_of(rec),
            }
            if not ok:
                props["error"] = f"exit code {rec.get('exit_code')}, exception {rec.get('exception')}"
            job = crate.add_action(tool, identifier=f"#job-{rid}", object=_compact(objects),
                                   result=_compact(results),
                                   properties={k: v for k, v in props.items() if v is not None})
            self.files[packed.member.name]["about"] = job
            jobs.append(job)
            controls.append(self.entity(ContextEntity, f"#control-{rid}", {
                "@type": "ControlAction", "name": f"orchestrate {rule}", "instrument": steps[rule],
                "object": job}))
        return jobs, controls

    def _parameters(self, rid: str, rec: dict[str, Any]) -> list[Entity]:
        """Seeds and settings of a job as PropertyValues, so they read as inputs of the action."""
        values: list[Entity] = []
        if rec.get("seeds"):
            seeds = rec["seeds"]
            values.append(self.entity(ContextEntity, f"#job-{rid}-seed", {
                "@type": "PropertyValue", "name": "seed",
                "value": str(seeds[0]) if len(seeds) == 1 else json.dumps(seeds)}))
        if rec.get("settings") is not None:
            values.append(self.entity(ContextEntity, f"#job-{rid}-settings", {
                "@type": "PropertyValue", "name": "settings",
                "value": json.dumps(rec["settings"], sort_keys=True)}))
        return values

    def add_run(self, workflow: Entity, records: list[dict[str, Any]], jobs: list[Entity],
                controls: list[Entity], description: str) -> Entity:
        """The CreateAction of the whole run and the OrganizeAction of Snakemake around it."""
        crate = self.crate
        starts = sorted(t for t in (iso_ms(r.get("start_time")) for r in records) if t)
        ends = sorted(t for t in (iso_ms(r.get("end_time")) for r in records) if t)
        produced = {i for job in jobs for i in get_norm_value(job, "result")}
        consumed: list[Entity] = []
        for job in jobs:
            for ref in get_norm_value(job, "object"):
                entity = crate.get(ref)
                if entity is not None and ref not in produced and \
                        "PropertyValue" not in as_list(entity.type) and entity not in consumed:
                    consumed.append(entity)
        config = [self.files[p.member.name] for p in self.packed if p.member.role == "config"]
        results = [self.files[p.member.name] for p in [*self.packed, *self.referenced]
                   if p.member.role == "result"]
        failed = unresolved_failures(records)
        run_id = uuid.uuid4()
        props: dict[str, Any] = {
            "@type": "CreateAction", "name": "Run of the parallel-scaling workflow",
            "description": description,
            "startTime": starts[0] if starts else None, "endTime": ends[-1] if ends else now(),
            "actionStatus": FAILED if failed else COMPLETED,
            "agent": self.run_agent,
        }
        if failed:
            props["error"] = "failed jobs: " + ", ".join(failed)
        run = crate.add_action(workflow, identifier=f"#run-{run_id}", object=_compact(config + consumed),
                               result=_compact(results),
                               properties={k: v for k, v in props.items() if v is not None})
        for p in self.packed:
            if p.member.role in {"log", "report"}:
                self.files[p.member.name]["about"] = run
        organize: dict[str, Any] = {"@type": "OrganizeAction", "name": "Snakemake orchestration of the run",
                                    "instrument": self.engine(records), "result": run,
                                    "agent": self.run_agent, "object": _compact(controls),
                                    "startTime": starts[0] if starts else None,
                                    "endTime": ends[-1] if ends else None}
        self.entity(ContextEntity, f"#organize-{run_id}", {k: v for k, v in organize.items() if v is not None})
        for action in (run, *jobs):
            crate.root_dataset.append_to("mentions", action, compact=True)
        return run

    def payload(self) -> bytes:
        """``ro-crate-metadata.json`` as the rocrate library writes it."""
        return b"".join(chunk for _, chunk in self.crate.metadata.stream())
