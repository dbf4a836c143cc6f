// The voice page: records the microphone with MediaRecorder, uploads the recording as a voice message
// (POST /v1/messages/audio, multipart), long-polls its reply, shows what was heard and the answer, and plays the
// spoken answer (GET /v1/messages/:id/audio). The bearer token (enqueue and read scopes) comes in the URL fragment
// (#token=…) or is asked for once, and stays in this tab's sessionStorage.
(() => {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token =
    fragment.get('token') || sessionStorage.getItem('ava-token') || prompt('API token (enqueue and read scopes)');
  if (token) sessionStorage.setItem('ava-token', token);
  const auth = { authorization: `Bearer ${token}` };
  const conversationId = sessionStorage.getItem('ava-voice-conversation') || `voice-${crypto.randomUUID()}`;
  sessionStorage.setItem('ava-voice-conversation', conversationId);
  const $ = (id) => document.getElementById(id);
  const button = $('talk');
  let recorder = null;

  const say = (text, isError = false) => {
    $('state').textContent = text;
    $('state').className = isError ? 'error' : '';
  };

  async function api(path, init = {}) {
    const res = await fetch(path, { ...init, headers: { ...auth, ...(init.headers || {}) } });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new Error(body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`);
    }
    return res;
  }

  async function send(blob) {
    const messageId = crypto.randomUUID();
    const form = new FormData();
    form.set('messageId', messageId);
    form.set('conversationId', conversationId);
    form.set('userId', 'voice-page');
    form.set('speech', 'true');
    form.set('audio', blob, 'speech.webm');
    say('Sending…');
    await api('/v1/messages/audio', { method: 'POST', body: form });
    say('Listening to what you said…');
    let doc;
    for (let i = 0; i < 6 && !(doc && (doc.status === 'replied' || doc.status === 'failed')); i++) {
      doc = await (await api(`/v1/messages/${messageId}?wait=25000`)).json();
    }
    if (doc.transcript) $('heard').textContent = doc.transcript.text;
    if (doc.status !== 'replied')
      throw new Error(doc.error ? `${doc.error.code}: ${doc.error.message}` : `no reply yet (${doc.status})`);
    $('reply').textContent = doc.text;
    $('intent').textContent = doc.intent ? `(${doc.intent})` : '';
    say('Speaking…');
    const audio = await (await api(`/v1/messages/${messageId}/audio?format=ogg`)).blob();
    const player = $('player');
    player.src = URL.createObjectURL(audio);
    player.dataset.messageId = messageId;
    player.onended = () => {
      player.dataset.played = messageId;
      say('');
    };
    await player.play();
  }

  button.addEventListener('click', async () => {
    if (recorder) {
      recorder.stop();
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = (e) => chunks.push(e.data);
      recorder.onstop = async () => {
        stream.getTracks().forEach((t) => t.stop());
        recorder = null;
        button.classList.remove('recording');
        button.textContent = '🎤 Talk';
        button.disabled = true;
        try {
          await send(new Blob(chunks, { type: chunks[0]?.type || 'audio/webm' }));
        } catch (err) {
          say(String(err.message || err), true);
        } finally {
          button.disabled = false;
        }
      };
      recorder.start();
      button.classList.add('recording');
      button.textContent = '■ Stop';
      say('Recording… press again when you are done.');
    } catch (err) {
      say(`No microphone: ${err.message || err}`, true);
    }
  });
})();
