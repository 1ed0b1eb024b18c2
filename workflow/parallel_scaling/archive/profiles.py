"""The RO-Crate profiles an archive declares, and checking them with roc-validator, offline.

Why a module of its own: a profile is a promise the crate makes (:mod:`.crate` declares them in
``conformsTo``) and that an independent validator checks (:mod:`.verify` reports it); one table,
:data:`PROFILES`, holds both sides: each profile's URI, name, version and roc-validator id.

roc-validator (``rocrate_validator``) needs the crate's JSON-LD contexts. They are served from
``workflow/resources/jsonld`` (see SOURCE.md there) through a ``requests`` transport mounted on the
validator's own HTTP session, and nothing else is fetched, so the check runs offline and always
reads the same definitions; a URL the validator asks for that is not shipped is reported, as the
checks that needed it could not run. This transport is ours: the validator's own offline mode
reads only its HTTP cache, which must first be filled from the network (``rocrate-validator cache
warm``). The validator gets a copy of the crate whose files are empty placeholders
(:func:`placeholder_crate`), so that a paper-scale archive is never unpacked.

RECOMMENDED issues are listed, not failed: :data:`KNOWN_RECOMMENDED` says why each one that an
archive of this pipeline still has is left (the README repeats it).
"""

from __future__ import annotations

import importlib.metadata
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from rocrate.model.metadata import BASENAME as METADATA_NAME

from parallel_scaling.dataio.paths import RESOURCE_DIR


class Profile(NamedTuple):
    """A profile the archive declares: its name and version, and roc-validator's id for it."""

    name: str
    version: str
    validator_id: str


#: conformsTo URI -> the profile; the crate declares each (Provenance only with tool runs).
PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": Profile("Process Run Crate", "0.5", "process-run-crate-0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": Profile("Workflow Run Crate", "0.5", "workflow-run-crate-0.5"),
    "https://w3id.org/ro/wfrun/provenance/0.5": Profile("Provenance Run Crate", "0.5",
                                                        "provenance-run-crate-0.5"),
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": Profile("Workflow RO-Crate", "1.0",
                                                                  "workflow-ro-crate-1.0"),
}
PROVENANCE_PROFILE = "https://w3id.org/ro/wfrun/provenance/0.5"
#: conformsTo profile URI -> roc-validator profile identifier
VALIDATOR_PROFILES = {uri: p.validator_id for uri, p in PROFILES.items()}
#: Where the JSON-LD contexts of the crate are shipped, and which URL each file answers.
CONTEXTS_DIR = RESOURCE_DIR / "jsonld"
CONTEXT_FILES = {
    "https://w3id.org/ro/crate/1.1/context": "ro-crate-1.1-context.jsonld",
    "https://w3id.org/ro/terms/workflow-run/context": "workflow-run-context.json",
}
VALIDATOR_DIST = "roc-validator"
VALIDATOR_PIN = "0.13.0"
#: RECOMMENDED checks an archive of this pipeline does not meet, and why (README: "Provenance and
#: the archive"). Anything else the validator recommends is fixed in the crate; the tests hold it so.
KNOWN_RECOMMENDED = {
    "process-run-crate-0.5_5.1": "The SoftwareApplication id SHOULD be an absolute URI: the main "
    "workflow and the pipeline's commands are files of the crate, with no public web address, so their "
    "ids are relative to the crate (the packages they ran with have absolute PyPI ids).",
    "process-run-crate-0.5_3.2": "The Application SHOULD have a url: the main workflow is the packed "
    "Snakefile, with no web address of its own (each command's url is its source file in the crate).",
    "ro-crate-1.1_22.3": "The publisher of the Root Data Entity SHOULD be an Organization: there is "
    "one only when the study names it (archive.organization, archive.organization_id).",
    "ro-crate-1.1_30.2": "The author SHOULD have an organizational affiliation: likewise, only when "
    "the study names archive.organization.",
    "ro-crate-1.1_30.3": "The author SHOULD have a Contextual Entity which specifies the affiliation: "
    "likewise, only when the study names archive.organization.",
}


@dataclass(frozen=True)
class ProfileIssue:
    """One issue the validator reported: its severity, check, message and the entity at fault."""

    profile: str
    severity: str
    check: str
    message: str
    entity: str | None = None


def validator_version() -> str | None:
    try:
        return importlib.metadata.version(VALIDATOR_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None


def _local_adapter(contexts_dir: Path, asked: list[str]) -> Any:
    """A requests transport that answers the shipped contexts and refuses everything else.

    Refusals raise the validator's own ``OfflineCacheMissError``, so it neither falls back to the
    network (its JSON-LD loader would on any other error) nor fails; the URL is noted in ``asked``
    and reported, since the checks that needed it did not run.
    """
    from requests.adapters import BaseAdapter, HTTPAdapter
    from rocrate_validator.utils.http import OfflineCacheMissError
    from urllib3.response import HTTPResponse

    files = {url: contexts_dir / name for url, name in CONTEXT_FILES.items()}

    class LocalContexts(BaseAdapter):
        def send(self, request, **kwargs):  # noqa: ANN001, ANN201 - requests' adapter interface
            url = str(request.url)
            path = files.get(url) or files.get(url.rstrip("/"))
            if path is None:
                asked.append(url)
                raise OfflineCacheMissError(url)
            raw = HTTPResponse(body=io.BytesIO(path.read_bytes()), status=200, preload_content=False,
                               headers={"Content-Type": "application/ld+json"}, request_url=url)
            return HTTPAdapter().build_response(request, raw)

        def close(self) -> None:
            pass

    return LocalContexts()


def validate_crate(crate_dir: Path, profiles: list[str], contexts_dir: Path = CONTEXTS_DIR) -> \
        tuple[dict[str, list[ProfileIssue]], list[str]]:
    """Run roc-validator on an unpacked crate for each profile id; returns the issues per profile
    (REQUIRED and RECOMMENDED) and the URLs it asked for that are not shipped.

    Raises ImportError when roc-validator is not installed.
    """
    from rocrate_validator import services
    from rocrate_validator.models import Severity, ValidationSettings
    from rocrate_validator.utils.http import HttpRequester

    for url, name in CONTEXT_FILES.items():
        if not (contexts_dir / name).is_file():
            raise FileNotFoundError(f"JSON-LD context for {url} not found: {contexts_dir / name}")
    asked: list[str] = []
    report: dict[str, list[ProfileIssue]] = {}
    for profile in profiles:
        # no_cache: a plain session, which the adapter below then serves; no user cache is read or
        # written and the validator's warm-up (network) never starts
        settings = ValidationSettings(rocrate_uri=str(crate_dir), profile_identifier=profile,
                                      requirement_severity="RECOMMENDED", no_cache=True,
                                      skip_availability_check=True)
        adapter = _local_adapter(contexts_dir, asked)
        session = HttpRequester().session
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        result = services.validate(settings)
        report[profile] = [
            ProfileIssue(profile, issue.severity.name, str(issue.identifier), str(issue.message or "").strip(),
                         issue.violatingEntity)
            for issue in result.get_issues(Severity.RECOMMENDED)]
    return report, sorted(set(asked))


def safe_name(name: str) -> bool:
    """A tar member name that stays inside the directory it is unpacked to."""
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts


def placeholder_crate(infos: dict[str, tarfile.TarInfo], metadata: bytes, dest: Path) -> Path:
    """The crate as the validator sees it: the metadata file plus an empty file per member."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / METADATA_NAME).write_bytes(metadata)
    for name, info in infos.items():
        if name == METADATA_NAME or not safe_name(name):
            continue
        target = dest / name
        if info.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif info.isfile():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
    return dest


def claimed_profiles(declared: list[str]) -> list[str]:
    """Validator ids of the declared profile URIs (unknown ones are left to the structure check)."""
    return [VALIDATOR_PROFILES[uri] for uri in declared if uri in VALIDATOR_PROFILES]


def inheritance(profiles: list[str]) -> dict[str, str]:
    """Declared profile -> a declared profile that inherits it (per the validator's profile
    definitions, ``prof:isTransitiveProfileOf``): validating the heir runs the ancestor's checks."""
    from rocrate_validator import services

    heirs: dict[str, str] = {}
    for profile in profiles:
        for uri in services.get_profile(profile).is_transitive_profile_of:
            ancestor = VALIDATOR_PROFILES.get(str(uri))
            if ancestor in profiles and ancestor != profile:
                heirs.setdefault(ancestor, profile)
    for ancestor, heir in list(heirs.items()):  # to the heir that is itself validated
        seen = {ancestor}
        while heir in heirs and heir not in seen:
            seen.add(heir)
            heir = heirs[heir]
        heirs[ancestor] = heir
    return heirs
