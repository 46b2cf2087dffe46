"""Asking LLM judges, many requests at once: the official `openai` client for any
OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp, TGI,
OpenRouter) and the `anthropic` client for Anthropic's Messages API.

The clients retry 429 and 5xx answers themselves, backing off and honouring Retry-After;
a timeout ends a request as a failure after those retries. Here: a concurrency limit, a
requests-per-minute limit, retries of answers that do not parse, and a pair's two orders
judged together. Nothing of Django: the judging task (workers/tasks/) feeds it pairs and
writes what comes back; it runs its event loop in a thread of its own.
"""

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

MALFORMED_RETRIES = 2  # a request whose answer does not parse is asked again at most twice
CLIENT_RETRIES = 4  # 429, 5xx and connection errors, with the client's back-off
_DONE = object()


@dataclass(frozen=True)
class Endpoint:
    provider: str  # "openai" or "anthropic"
    base_url: str
    model: str
    api_key: str
    temperature: float | None = None  # None: the provider's default
    max_tokens: int = 512
    timeout: float = 60.0


@dataclass
class Reply:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0


class RequestFailed(Exception):
    """The endpoint gave no usable answer (after the client's own retries)."""


@dataclass
class Outcome:
    """A pair's result: the parsed verdict of each order, or why there is none."""

    key: object
    verdicts: list = field(default_factory=list)
    error: str = ""
    raw: str = ""  # the last unparsable answer, for the job page
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


def asker(endpoint: Endpoint) -> Callable:
    """An async function text -> Reply for this endpoint, on one shared client (its `close`
    attribute closes the client, inside the event loop that used it)."""
    if endpoint.provider == "anthropic":
        import anthropic

        client = anthropic.AsyncAnthropic(
            api_key=endpoint.api_key, base_url=endpoint.base_url or None,
            timeout=endpoint.timeout, max_retries=CLIENT_RETRIES,
        )  # fmt: skip
        errors = (anthropic.APIError,)
        extra = {} if endpoint.temperature is None else {"temperature": endpoint.temperature}

        async def ask(text: str) -> Reply:
            try:
                answer = await client.messages.create(
                    model=endpoint.model, max_tokens=endpoint.max_tokens,
                    messages=[{"role": "user", "content": text}], extra_body=extra or None,
                )  # fmt: skip
            except errors as exc:
                raise RequestFailed(_describe(exc)) from None
            words = "".join(getattr(block, "text", "") for block in answer.content)
            usage = answer.usage
            return Reply(words, usage.input_tokens or 0, usage.output_tokens or 0)

        ask.close = client.close
        return ask

    import openai

    client = openai.AsyncOpenAI(
        api_key=endpoint.api_key or "none", base_url=endpoint.base_url or None,
        timeout=endpoint.timeout, max_retries=CLIENT_RETRIES,
    )  # fmt: skip
    errors = (openai.APIError,)
    options = {} if endpoint.temperature is None else {"temperature": endpoint.temperature}

    async def ask(text: str) -> Reply:
        try:
            answer = await client.chat.completions.create(
                model=endpoint.model, max_tokens=endpoint.max_tokens,
                messages=[{"role": "user", "content": text}], **options,
            )  # fmt: skip
        except errors as exc:
            raise RequestFailed(_describe(exc)) from None
        usage = answer.usage
        return Reply(
            answer.choices[0].message.content or "",
            getattr(usage, "prompt_tokens", 0) or 0,
            getattr(usage, "completion_tokens", 0) or 0,
        )

    ask.close = client.close
    return ask


def _describe(exc: Exception) -> str:
    """What went wrong, without the request (whose headers carry the key)."""
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    return f"{kind} (HTTP {status})" if status else kind


class PerMinute:
    """Starts at most `limit` requests a minute, evenly spaced; None: no limit."""

    def __init__(self, limit: int | None):
        self.gap = 60.0 / limit if limit else 0.0
        self.next = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.gap:
            return
        async with self.lock:
            now = time.monotonic()
            delay = self.next - now
            self.next = max(now, self.next) + self.gap
        if delay > 0:
            await asyncio.sleep(delay)


async def _verdict(ask, text: str, parse, gate: asyncio.Semaphore, pace: PerMinute, outcome):
    """One order's verdict, asking again when the answer does not parse."""
    for _ in range(1 + MALFORMED_RETRIES):
        await pace.wait()
        async with gate:
            reply = await ask(text)
        outcome.requests += 1
        outcome.input_tokens += reply.input_tokens
        outcome.output_tokens += reply.output_tokens
        try:
            return parse(reply.text)
        except ValueError as exc:
            outcome.raw, reason = reply.text, str(exc)
    raise RequestFailed(f"malformed answer {1 + MALFORMED_RETRIES} times: {reason}")


async def _judge(ask, key, texts, parse, gate, pace) -> Outcome:
    """Both orders at once; each runs to its end, so that every request made is counted."""
    outcome = Outcome(key)
    results = await asyncio.gather(
        *(_verdict(ask, t, parse, gate, pace, outcome) for t in texts), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if not failed:
        outcome.verdicts = list(results)
    elif isinstance(failed[0], RequestFailed):
        outcome.error = str(failed[0])
    else:  # a failure never stops the job
        outcome.error = f"{type(failed[0]).__name__}: {failed[0]}"
    return outcome


def judge_all(
    endpoint: Endpoint,
    pairs: Iterable[tuple[object, tuple[str, ...]]],
    parse: Callable[[str], object],
    *,
    concurrency: int = 8,
    per_minute: int | None = None,
    stop: threading.Event | None = None,
    ask: Callable | None = None,
) -> Iterator[Outcome]:
    """Judge (key, texts) items, each text one request (a pair's two orders), with at most
    `concurrency` requests in flight; yields each item's Outcome as it finishes, in no set
    order. Setting `stop` lets the requests in flight finish and starts no new ones."""
    stop = stop or threading.Event()
    results: queue.Queue = queue.Queue()

    async def main() -> None:
        gate, pace = asyncio.Semaphore(concurrency), PerMinute(per_minute)
        request = ask or asker(endpoint)
        items = iter(pairs)

        async def lane() -> None:
            for key, texts in items:  # lanes share the iterator: each item is taken once
                if stop.is_set():
                    return
                results.put(await _judge(request, key, texts, parse, gate, pace))

        try:
            await asyncio.gather(*(lane() for _ in range(max(1, concurrency))))
        finally:
            if hasattr(request, "close"):
                await request.close()

    failure: list[BaseException] = []  # what stopped the requests themselves, not one pair

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(exc)
        finally:
            results.put(_DONE)

    thread = threading.Thread(target=run, name="judge", daemon=True)
    thread.start()
    try:
        while (item := results.get()) is not _DONE:
            yield item
    finally:
        stop.set()
        thread.join()
    if failure:
        raise failure[0]
