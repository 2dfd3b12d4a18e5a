"""Secret files as a container gets them (issue 12): one tar of /run/secrets, each file
0400 and owned by the container's user."""

from __future__ import annotations

import io
import tarfile

from jupyter_deploy.runtimes.secretfiles import FILE_PREFIX, archive, files_of, owner


def test_the_archive_holds_each_file_0400_owned_by_the_user() -> None:
    data = archive({"tls.key": "k3y", "token": "t0k"}, 10001, 10002)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"run/secrets", "run/secrets/tls.key", "run/secrets/token"}
        assert members["run/secrets"].isdir() and members["run/secrets"].mode == 0o500
        for name in ("tls.key", "token"):
            member = members[f"run/secrets/{name}"]
            assert (member.mode, member.uid, member.gid) == (0o400, 10001, 10002)
        file = tar.extractfile(members["run/secrets/tls.key"])
        assert file is not None and file.read() == b"k3y"


def test_only_file_secrets_become_files() -> None:
    stored = {"DB_PASSWORD": "pw", f"{FILE_PREFIX}tls.key": "k3y", "registry:password": "r"}
    assert files_of(stored) == {"tls.key": "k3y"}


def test_a_numeric_user_needs_no_look_up() -> None:
    assert owner(None, "10001:10001") == (10001, 10001)
    assert owner(None, "1000") == (1000, 1000)
