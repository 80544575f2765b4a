// The scene as cut: a marker per shot seeks the player; a new value (a card clicked) seeks to
// the selected shot's start once the video's metadata is there.
element.addEventListener('click', (event) => {
  const marker = event.target.closest('.marker');
  const player = element.querySelector('.player');
  if (marker && player) player.currentTime = Number(marker.dataset.start);
});
function seekToSelected() {
  const player = element.querySelector('.player');
  if (!player || player.dataset.seek === '') return;
  const go = () => { player.currentTime = Number(player.dataset.seek); };
  if (player.readyState >= 1) go(); else player.addEventListener('loadedmetadata', go, { once: true });
}
seekToSelected();
watch('value', seekToSelected);
