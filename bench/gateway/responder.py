"""A trivial nats-py responder: the floor the gateway path is compared against."""

import asyncio
import sys

import nats


async def main(url: str, subject: str) -> None:
    nc = await nats.connect(url, inbox_prefix="_INBOX.gateway")  # the gateway's user reads only its inbox

    async def reply(msg):
        await msg.respond(b'{"ok":true,"data":{}}')

    await nc.subscribe(subject, cb=reply)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
