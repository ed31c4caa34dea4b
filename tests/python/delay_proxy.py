"""A TCP relay that holds every chunk for DELAY seconds, each connection and
direction on its own, in order: a network with a round trip of 2 x DELAY.

Usage: delay_proxy.py TARGET_PORT DELAY. Prints its own loopback port, then
relays until killed. The asyncio tests use it to give calls a round trip long
enough to tell concurrent calls from serialised ones.
"""

import asyncio
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            await asyncio.sleep(max(0, due - loop.time()))
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
        writer.close()


async def main(target, delay):
    async def relay(r1, w1):
        try:
            r2, w2 = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            w1.close()
            return
        await asyncio.gather(pump(r1, w2, delay), pump(r2, w1, delay), return_exceptions=True)

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
