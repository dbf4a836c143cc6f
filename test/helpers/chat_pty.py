"""Drives `ava chat` through a real pseudo-terminal: types each argument line at a `You> ` prompt, then an empty
line, and prints the transcript and the exit status. Usage: chat_pty.py LINE [LINE...] -- COMMAND [ARGS...]"""
import os
import pty
import select
import sys
import time

split = sys.argv.index('--')
lines, command = sys.argv[1:split], sys.argv[split + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(command[0], command)


def read_until(token, timeout=60):
    buf = b''
    end = time.time() + timeout
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
            if token.encode() in buf:
                break
    return buf.decode(errors='replace')


transcript = read_until('You> ')
for line in lines:
    os.write(fd, (line + '\n').encode())
    transcript += read_until('You> ')
os.write(fd, b'\n')
_, status = os.waitpid(pid, 0)
transcript += read_until('\0', timeout=1)
sys.stdout.write(transcript)
sys.stdout.write('\nEXIT %d\n' % os.waitstatus_to_exitcode(status))
