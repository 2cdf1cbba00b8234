#!/usr/bin/env python3
"""A loopback OpenAI-compatible /v1/chat/completions server standing in for the LLM of
`lmz qa encode --llm URL` in tests/test_qa.c.

usage: qa_oracle_server.py LOG_FILE
Listens on 127.0.0.1 at a free port, prints the port on the first line of standard output,
and serves until killed (or for at most 10 minutes, so a crashed test leaves nothing
behind). The first path segment picks the behaviour, e.g. POST /good/v1/chat/completions:

  good       200: a reference solution for a solve request (no "Question about" in the user
             message); for a yes/no request, "Yes." when the question has the word "correct"
             or "right" in it, else "no, because ..." (lower case: the client must not care);
             the judge's question is accepted exactly when the problem mentions apples
  slow       answers after 30 s (the client's timeout should end it first)
  malformed  200 with a body that is not JSON
  nochoices  200 with a JSON object without "choices"
  error500   500 with an OpenAI-style {"error": {"message": ...}}

Every request is appended to LOG_FILE as one JSON line: path, Authorization header, body.
"""
import http.server
import json
import sys
import threading
import time

REFERENCE = "The answer is 3 + 4 = 7.\nFinal answer: 7"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, status, body):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        with open(LOG, "a") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"),
                                "body": raw.decode("utf-8", "replace")}) + "\n")
        mode = self.path.strip("/").split("/")[0]
        try:
            req = json.loads(raw)
            msgs = req["messages"]
            assert msgs[-1]["role"] == "user" and isinstance(msgs[-1]["content"], str)
            assert req.get("temperature") == 0
            user = msgs[-1]["content"]
        except Exception as e:  # a bad request from lmz is a test failure; say so
            self.send(400, json.dumps({"error": {"message": "bad request: %s" % e}}))
            return
        if mode == "slow":
            time.sleep(30)
        if mode in ("good", "slow"):
            marker = "Question about the student's solution: "
            if marker in user:
                question = user.split(marker, 1)[1].split("\n", 1)[0].lower()
                if "including its final answer" in question:  # the judge's question (math)
                    yes = "apples" in user
                else:
                    yes = "correct" in question or "right" in question
                content = "Yes." if yes else "no, because it is not."
            else:
                content = REFERENCE
            reply = {"object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
            self.send(200, json.dumps(reply))
        elif mode == "malformed":
            self.send(200, '{"choices": [{"message": {"content": "Yes')
        elif mode == "nochoices":
            self.send(200, json.dumps({"object": "chat.completion"}))
        elif mode == "error500":
            self.send(500, json.dumps({"error": {"message": "the model crashed"}}))
        else:
            self.send(404, json.dumps({"error": {"message": "no such mode"}}))


if __name__ == "__main__":
    LOG = sys.argv[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    threading.Timer(600, server.shutdown).start()
    server.serve_forever()
