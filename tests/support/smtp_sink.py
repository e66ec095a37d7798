"""A real SMTP server for the email channel's tests, on aiosmtpd.

Usage: smtp_sink.py DIR

Listens on 127.0.0.1 on a port the system picks and prints `PORT <n>` on its first line.
Each accepted message is parsed with the standard `email` package and saved as
DIR/msg-<n>.json (envelope, decoded headers, text and HTML parts, the inline image's type,
Content-ID and size) and, when it has one, DIR/msg-<n>.png (the image's bytes).

Recipients whose local part starts with `refuse` get a permanent 550 reply; those starting
with `later` a transient 451. With SINK_USER and SINK_PASSWORD in the environment, AUTH
(PLAIN or LOGIN, allowed without TLS on this loopback test server) is required and only that
pair is accepted. Runs until killed.
"""

import asyncio
import email
import email.policy
import json
import logging
import os
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("refuse"):
            return "550 5.1.1 <%s>: no such mailbox here" % address
        if local.startswith("later"):
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stem = os.path.join(self.folder, "msg-%d" % self.count)
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "raw_subject": raw.split(b"\r\nSubject: ", 1)[-1].split(b"\r\n", 1)[0].decode("ascii", "replace"),
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "top_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "html_parent": None,
            "image": None,
        }
        for part in msg.walk():
            if part.is_multipart():
                for sub in part.iter_parts():
                    if sub is html:
                        record["html_parent"] = part.get_content_type()
            if part.get_content_maintype() == "image":
                data = part.get_payload(decode=True)
                with open(stem + ".png", "wb") as f:
                    f.write(data)
                record["image"] = {
                    "content_type": part.get_content_type(),
                    "content_id": str(part["content-id"]),
                    "disposition": part.get_content_disposition(),
                    "bytes": len(data),
                }
        # Write then rename, so a reader never sees half a file.
        with open(stem + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, indent=1)
        os.rename(stem + ".tmp", stem + ".json")
        return "250 Message accepted"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok)

    return check


# AUTH without TLS is what the loopback test wants; aiosmtpd warns about it (and about an
# attribute it reads internally) on every start, which only clutters the test output.
warnings.simplefilter("ignore")
logging.getLogger("mail.log").setLevel(logging.ERROR)


async def main(folder):
    loop = asyncio.get_running_loop()
    handler = Saver(folder)
    options = {"hostname": "sink.test"}
    user, password = os.environ.get("SINK_USER"), os.environ.get("SINK_PASSWORD")
    if user and password:
        options.update(
            authenticator=authenticator(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    server = await loop.create_server(
        lambda: SMTP(handler, **options), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
