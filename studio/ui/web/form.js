// An editor that saves as the director types: changes wait DEBOUNCE_MS after the last key, then
// go to the server one save at a time against the row's version, so two tabs editing one row
// get the server's stale-edit message instead of overwriting each other. Text stays in the box
// whatever the server says: nothing typed is lost.
const DEBOUNCE_MS = 400;
let timer = null;
let saving = false;
let again = false;

const form = () => element.querySelector('.form');
function showState(text, isError) {
  const state = element.querySelector('.state');
  if (!state) return;
  state.textContent = text;
  state.classList.toggle('error', Boolean(isError));
}

function values() {
  const out = {};
  element.querySelectorAll('.field').forEach((field) => {
    const name = field.dataset.name;
    const kind = field.dataset.kind;
    if (kind === 'checks') {
      out[name] = Array.from(field.querySelectorAll('input:checked')).map((box) => Number(box.value));
    } else if (kind === 'number') {
      const raw = field.querySelector('input').value;
      out[name] = raw.trim() === '' || Number.isNaN(Number(raw)) ? raw : Number(raw);
    } else {
      out[name] = field.querySelector('input, textarea').value;
    }
  });
  return out;
}

async function flush() {
  if (saving) { again = true; return; }
  const root = form();
  if (!root || !root.dataset.id) return;
  saving = true;
  showState('Saving…', false);
  try {
    const reply = await server.save({ id: Number(root.dataset.id), version: Number(root.dataset.version), values: values() });
    if (reply && reply.error) {
      showState(reply.error, true);
    } else if (reply) {
      root.dataset.version = String(reply.version);
      showState('Saved', false);
      trigger('saved', { id: Number(root.dataset.id), version: reply.version });
    }
  } catch (error) {
    showState('Not saved: the server did not answer (' + error + ')', true);
  } finally {
    saving = false;
    if (again) { again = false; flush(); }
  }
}

function schedule() {
  clearTimeout(timer);
  showState('Editing…', false);
  timer = setTimeout(flush, DEBOUNCE_MS);
}
element.addEventListener('input', (event) => { if (event.target.closest('.field')) schedule(); });
element.addEventListener('change', (event) => { if (event.target.type === 'checkbox') schedule(); });
