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
The HTTP scaffolding is rewriter_server.py's (ChatHandler, serve).
"""
import json
import sys
import time

from rewriter_server import ChatHandler, chat_completion, serve

REFERENCE = "The answer is 3 + 4 = 7.\nFinal answer: 7"


class Handler(ChatHandler):
    def do_POST(self):
        raw, mode = self.read_request()
        try:
            req = json.loads(raw)
            msgs = req["messages"]
            assert msgs[-1]["role"] == "user" and isinstance(msgs[-1]["content"], str)
            assert req.get("temperature") == 0
            user = msgs[-1]["content"]
        except Exception as e:
            self.bad_request(e)
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
            self.send(200, chat_completion([content]))
        elif mode == "malformed":
            self.send(200, '{"choices": [{"message": {"content": "Yes')
        elif mode == "nochoices":
            self.send(200, json.dumps({"object": "chat.completion"}))
        elif mode == "error500":
            self.send(500, json.dumps({"error": {"message": "the model crashed"}}))
        else:
            self.send(404, json.dumps({"error": {"message": "no such mode"}}))


if __name__ == "__main__":
    serve(Handler, sys.argv[1])
