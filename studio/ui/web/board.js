// The storyboard: click selects, drag reorders, the card's buttons add, duplicate and delete,
// and the keyboard moves the selection (left / right) or adds a shot after it (N).
// Listeners sit on `element` (delegation): the template re-renders, the listeners stay.
const cards = () => Array.from(element.querySelectorAll('.card[data-shot-id]'));
const selectedCard = () => element.querySelector('.card.selected[data-shot-id]');
const idOf = (card) => Number(card.dataset.shotId);
const versionOf = (card) => Number(card.querySelector('.keyframe-file').dataset.version);

// A keyframe goes to the server as the file's bytes (a data: URL); the server checks it and
// answers with the board, or with an error naming the field (nothing changes then).
function uploadKeyframe(card, file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => trigger('upload_keyframe', { shot_id: idOf(card), version: versionOf(card), name: file.name, data: reader.result });
  reader.readAsDataURL(file);
}
element.addEventListener('change', (event) => {
  const input = event.target.closest('.keyframe-file');
  if (!input) return;
  uploadKeyframe(input.closest('.card'), input.files[0]);
  input.value = '';
});

function select(card) {
  if (!card) return;
  cards().forEach((c) => c.classList.toggle('selected', c === card));
  element.querySelectorAll('.segment').forEach((s) => s.classList.toggle('selected', s.dataset.number === card.dataset.number));
  card.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  trigger('select_shot', { shot_id: idOf(card) });
}

function addAfterSelected() {
  const card = selectedCard();
  trigger('add_shot', { after_id: card ? idOf(card) : null });
}

element.addEventListener('click', (event) => {
  if (event.target.closest('.show-prompt')) { trigger('show_prompt', {}); return; }
  const segment = event.target.closest('.segment');
  if (segment) { select(cards()[Number(segment.dataset.number) - 1]); return; }
  const card = event.target.closest('.card');
  if (!card) return;
  if (card.classList.contains('add-shot')) { addAfterSelected(); return; }
  if (event.target.closest('.duplicate')) { trigger('duplicate_shot', { shot_id: idOf(card) }); return; }
  if (event.target.closest('.set-keyframe')) { card.querySelector('.keyframe-file').click(); return; }
  if (event.target.closest('.keyframe-file')) return;
  if (event.target.closest('.clear-keyframe')) {
    trigger('clear_keyframe', { shot_id: idOf(card), version: versionOf(card) });
    return;
  }
  if (event.target.closest('.delete')) {
    if (window.confirm('Delete shot ' + card.dataset.number + ' and all its takes?')) trigger('delete_shot', { shot_id: idOf(card) });
    return;
  }
  select(card);
});

document.addEventListener('keydown', (event) => {
  if (!element.isConnected || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest && event.target.closest('input, textarea, select, [contenteditable="true"]')) return;
  const all = cards();
  const index = all.indexOf(selectedCard());
  if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
    const step = event.key === 'ArrowRight' ? 1 : -1;
    const next = all[Math.min(Math.max(index + step, 0), all.length - 1)];
    if (next && next !== all[index]) { event.preventDefault(); select(next); }
  } else if (event.key === 'n' || event.key === 'N') {
    event.preventDefault();
    addAfterSelected();
  }
});

let dragged = null;
element.addEventListener('dragstart', (event) => {
  const card = event.target.closest('.card[data-shot-id]');
  if (!card) return;
  dragged = card;
  card.classList.add('dragging');
  event.dataTransfer.effectAllowed = 'move';
  event.dataTransfer.setData('text/plain', card.dataset.shotId);
});
const carriesFiles = (event) => !dragged && event.dataTransfer && Array.from(event.dataTransfer.types || []).includes('Files');
element.addEventListener('dragover', (event) => {
  const card = event.target.closest('.card[data-shot-id]');
  if (!card) return;
  if (dragged) event.preventDefault();
  else if (carriesFiles(event)) { event.preventDefault(); card.classList.add('dropping'); }
});
element.addEventListener('dragleave', (event) => {
  const card = event.target.closest('.card[data-shot-id]');
  if (card && !card.contains(event.relatedTarget)) card.classList.remove('dropping');
});
element.addEventListener('drop', (event) => {
  const target = event.target.closest('.card[data-shot-id]');
  if (target && carriesFiles(event)) {  // an image dropped on a card becomes its keyframe
    event.preventDefault();
    target.classList.remove('dropping');
    uploadKeyframe(target, event.dataTransfer.files[0]);
    return;
  }
  if (!dragged || !target || target === dragged) return;
  event.preventDefault();
  const box = target.getBoundingClientRect();
  const after = event.clientX > box.left + box.width / 2;
  target.parentNode.insertBefore(dragged, after ? target.nextSibling : target);
  trigger('reorder', { shot_ids: cards().map(idOf) });
});
element.addEventListener('dragend', () => {
  if (dragged) dragged.classList.remove('dragging');
  dragged = null;
});
