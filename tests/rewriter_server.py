#!/usr/bin/env python3
"""A loopback OpenAI-compatible /v1/chat/completions server for tests/test_lossy.c.

usage: rewriter_server.py LOG_FILE
Listens on 127.0.0.1 at a free port, prints the port on the first line of standard output,
and serves until killed (or for at most 10 minutes, so a crashed test leaves nothing
behind). The first path segment picks the behaviour, e.g. POST /good/v1/chat/completions:

  good       200: "n" choices; choice 1 is a short rewrite, the others longer than any input
  chunked    the same reply with Transfer-Encoding: chunked
  fewer      200 with one choice whatever "n" asks
  slow       answers after 30 s (the client's timeout should end it first)
  malformed  200 with a body that is not JSON
  nochoices  200 with a JSON object without "choices"
  nocontent  200 with a choice whose message has no content
  error500   500 with an OpenAI-style {"error": {"message": ...}}
  huge       200 with 9 MiB of body (over lmz's 8 MiB bound)

Every request is appended to LOG_FILE as one JSON line: path, Authorization header, body.

ChatHandler and serve() are the scaffolding the other test servers (qa_oracle_server.py)
build on.
"""
import http.server
import json
import sys
import threading
import time

SHORT = "3*3=9; 9*60=540"
LONG = ("James decides to run three sprints, three times in every week, and each and every one of those sprints "
        "is exactly sixty meters long, so counting all of them together over the week he runs a total of five "
        "hundred and forty meters, which is the answer to the question that was asked about his running.")


class ChatHandler(http.server.BaseHTTPRequestHandler):
    """A quiet chat completions handler: send() a reply, read_request() a logged request."""
    protocol_version = "HTTP/1.1"
    log_file = None  # set by serve()

    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, status, body, chunked=False):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            if chunked:
                for i in range(0, len(data), 7):
                    piece = data[i:i + 7]
                    self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\nX-Trailer: 1\r\n\r\n")
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def read_request(self):
        """The request's body, appended to the log, and its mode (the first path segment)."""
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        with open(self.log_file, "a") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"),
                                "body": raw.decode("utf-8", "replace")}) + "\n")
        return raw, self.path.strip("/").split("/")[0]

    def bad_request(self, e):
        """A bad request from lmz is a test failure; say so."""
        self.send(400, json.dumps({"error": {"message": "bad request: %s" % e}}))


def chat_completion(contents):
    """A chat completion whose choices' message contents are CONTENTS, in order."""
    return json.dumps({"object": "chat.completion", "choices": [
        {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
        for i, c in enumerate(contents)]})


def serve(handler, log_file):
    """Serves HANDLER on a free loopback port, printed first, until killed or for 10 minutes."""
    handler.log_file = log_file
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    threading.Timer(600, server.shutdown).start()
    server.serve_forever()


class Handler(ChatHandler):
    def do_POST(self):
        raw, mode = self.read_request()
        try:
            req = json.loads(raw)
            n = int(req.get("n", 1))
            assert req["messages"][0]["role"] == "user" and isinstance(req["messages"][0]["content"], str)
        except Exception as e:
            self.bad_request(e)
            return
        if mode == "slow":
            time.sleep(30)
        if mode in ("good", "chunked", "fewer", "slow"):
            contents = [SHORT if i == 1 else LONG + " (%d)" % i for i in range(1 if mode == "fewer" else n)]
            self.send(200, chat_completion(contents), chunked=mode == "chunked")
        elif mode == "malformed":
            self.send(200, '{"choices": [{"message": {"content": "unterminated')
        elif mode == "nochoices":
            self.send(200, json.dumps({"object": "chat.completion"}))
        elif mode == "nocontent":
            self.send(200, json.dumps({"choices": [{"message": {"role": "assistant"}}]}))
        elif mode == "error500":
            self.send(500, json.dumps({"error": {"message": "the model crashed", "type": "server_error"}}))
        elif mode == "huge":
            self.send(200, b"[" + b"1," * (9 << 19) + b"1]")
        else:
            self.send(404, json.dumps({"error": {"message": "no such path"}}))


if __name__ == "__main__":
    serve(Handler, sys.argv[1])
