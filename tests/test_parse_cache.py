"""The parse cache is reused, and a cache file this user's milkb did not write is never unpickled."""
import pickle

from .conftest import run_kb


class Boom:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['MARK'], 'w').write('ran')",))


def test_the_cache_is_written_and_reused(kb_root):
    assert run_kb("validate", cwd=kb_root).code == 0
    cache = kb_root / ".kb-cache" / "parsed.pickle"
    assert cache.is_file()
    before = cache.stat().st_mtime_ns
    assert run_kb("validate", cwd=kb_root).code == 0
    assert cache.stat().st_mtime_ns == before  # nothing changed, nothing re-parsed or re-written


def test_a_planted_cache_is_ignored(kb_root, tmp_path):
    mark = tmp_path / "ran"
    cache = kb_root / ".kb-cache" / "parsed.pickle"
    cache.parent.mkdir(parents=True, exist_ok=True)
    payload = pickle.dumps(Boom())
    for planted in (payload, b"\0" * 32 + payload):  # unsigned, and signed with a key that is not this user's
        cache.write_bytes(planted)
        result = run_kb("validate", cwd=kb_root, env={"MARK": str(mark)})
        assert result.code == 0, result.stderr
        assert not mark.exists()
