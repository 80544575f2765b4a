// Characters as cards: a click selects one for the editor; add and delete act on the cast, and
// a reference image goes to the server as the file's bytes (a data: URL) for it to check.
element.addEventListener('click', (event) => {
  const person = event.target.closest('.person');
  if (!person) return;
  if (person.classList.contains('add-character')) { trigger('add_character', {}); return; }
  const id = Number(person.dataset.characterId);
  const input = person.querySelector('.reference-file');
  if (event.target.closest('.reference-file')) return;
  if (event.target.closest('.set-reference')) { input.click(); return; }
  if (event.target.closest('.clear-reference')) {
    trigger('clear_reference', { character_id: id, version: Number(input.dataset.version) });
    return;
  }
  if (event.target.closest('.delete')) {
    if (window.confirm('Delete this character? Shots that show them keep their text.')) trigger('delete_character', { character_id: id });
    return;
  }
  element.querySelectorAll('.person').forEach((p) => p.classList.toggle('selected', p === person));
  trigger('select_character', { character_id: id });
});
element.addEventListener('change', (event) => {
  const input = event.target.closest('.reference-file');
  if (!input || !input.files[0]) return;
  const file = input.files[0];
  const id = Number(input.closest('.person').dataset.characterId);
  const reader = new FileReader();
  reader.onload = () => trigger('upload_reference', { character_id: id, version: Number(input.dataset.version), name: file.name, data: reader.result });
  reader.readAsDataURL(file);
  input.value = '';
});
