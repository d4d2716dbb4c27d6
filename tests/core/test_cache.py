from pathlib import Path

from langchain_core.messages import HumanMessage

from malles_graph.backends import ResponseCache, build_client
from malles_graph.scenario import BackendConfig
from tests.fakes import ScriptedChatModel


def test_cache_hit_and_miss(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    model = ScriptedChatModel(script=["first", "second"])
    client = build_client(BackendConfig(), cache=cache, chat_model=model)
    messages = [HumanMessage(content="hello")]
    a = client.chat(messages, seed=1)
    b = client.chat(messages, seed=1)
    c = client.chat(messages, seed=2)
    assert (a.text, a.cached) == ("first", False)
    assert (b.text, b.cached) == ("first", True)  # same key: answered from disk, model not called
    assert (c.text, c.cached) == ("second", False)  # another seed is another key
    assert len(model.calls) == 2 and (cache.hits, cache.misses) == (1, 2) and len(cache) == 2


def test_cache_survives_reopen_and_no_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    build_client(BackendConfig(), cache=ResponseCache(path), chat_model=ScriptedChatModel(script=["x"])).chat(
        [HumanMessage(content="q")]
    )
    again = build_client(BackendConfig(), cache=ResponseCache(path), chat_model=ScriptedChatModel(script=["y"]))
    assert again.chat([HumanMessage(content="q")]).text == "x"
    uncached = build_client(BackendConfig(cache=False), chat_model=ScriptedChatModel(script=["z"]))
    assert uncached.cache is None and uncached.chat([HumanMessage(content="q")]).text == "z"
