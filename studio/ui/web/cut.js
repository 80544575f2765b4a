// The scene as cut: a marker per shot seeks the player; a new value (a card clicked) seeks to
// the selected shot's start once the video's metadata is there. "Use this frame" sends the
// frame under the playhead as (take, frame index in that take) for the take's own shot.
function frameUnderPlayhead(player) {
  const fps = Number(element.querySelector('.cut').dataset.fps);
  const frame = Math.floor(player.currentTime * fps + 1e-3);  // the frame shown at currentTime
  const markers = Array.from(element.querySelectorAll('.marker'));
  const marker = markers.find((m) => frame < Number(m.dataset.startFrame) + Number(m.dataset.frames)) || markers[markers.length - 1];
  if (!marker) return null;
  const local = Math.min(Math.max(frame - Number(marker.dataset.startFrame), 0), Number(marker.dataset.frames) - 1);
  return { take_id: Number(marker.dataset.takeId), frame: local, shot_id: Number(marker.dataset.shotId), version: Number(marker.dataset.shotVersion) };
}
element.addEventListener('click', (event) => {
  const marker = event.target.closest('.marker');
  const player = element.querySelector('.player');
  if (marker && player) player.currentTime = Number(marker.dataset.start);
  if (event.target.closest('.use-frame') && player) {
    player.pause();
    const picked = frameUnderPlayhead(player);
    if (picked) trigger('use_frame', picked);
  }
});
function seekToSelected() {
  const player = element.querySelector('.player');
  if (!player || player.dataset.seek === '') return;
  const go = () => { player.currentTime = Number(player.dataset.seek); };
  if (player.readyState >= 1) go(); else player.addEventListener('loadedmetadata', go, { once: true });
}
seekToSelected();
watch('value', seekToSelected);
