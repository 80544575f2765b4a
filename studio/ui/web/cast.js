// Characters as cards: a click selects one for the editor; add and delete act on the cast.
element.addEventListener('click', (event) => {
  const person = event.target.closest('.person');
  if (!person) return;
  if (person.classList.contains('add-character')) { trigger('add_character', {}); return; }
  const id = Number(person.dataset.characterId);
  if (event.target.closest('.delete')) {
    if (window.confirm('Delete this character? Shots that show them keep their text.')) trigger('delete_character', { character_id: id });
    return;
  }
  element.querySelectorAll('.person').forEach((p) => p.classList.toggle('selected', p === person));
  trigger('select_character', { character_id: id });
});
