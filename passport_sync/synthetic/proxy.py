"""A local TCP proxy that adds a WAN round trip to every connection to one MySQL server: the fleet
benchmark reaches each hospital through its own port."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class LatencyProxies:
    """Local TCP proxies to one MySQL server, one port per hospital, each delaying every chunk by
    ``delay`` seconds in each direction (a WAN round trip of 2 x delay, no bandwidth limit). They
    run on an asyncio loop in a thread of the benchmark process, not in the measured child."""

    def __init__(self, target_host: str, target_port: int, delay: float) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="latency-proxies", daemon=True)
        self.servers: list[asyncio.AbstractServer] = []

    def __enter__(self) -> LatencyProxies:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            for server in self.servers:
                server.close()
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def open(self, address: str = "127.0.0.1") -> int:
        """A new listening port on ``address`` forwarding to the target."""
        server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, address, 0), self.loop).result(
            timeout=10
        )
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward each chunk ``delay`` after it arrived; later chunks are not held behind it longer."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((self.loop.time() + self.delay, data))
        except OSError:
            pass
        finally:
            queue.put_nowait((0.0, b""))
            # Cancelled at shutdown: the connection is closed either way.
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await sender
            writer.close()
