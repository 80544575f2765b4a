// A shot's takes: hovering plays one muted, a click makes it the selected take (the one in the
// cut), and two ticked takes play side by side in sync.
const videoOf = (take) => take.querySelector('video');

element.addEventListener('mouseover', (event) => {
  const take = event.target.closest('.take');
  if (!take || take.classList.contains('playing')) return;
  const video = videoOf(take);
  if (!video.src) video.src = video.dataset.src;
  take.classList.add('playing');
  video.play().catch(() => {});
});
element.addEventListener('mouseout', (event) => {
  const take = event.target.closest('.take');
  if (!take || take.contains(event.relatedTarget)) return;
  take.classList.remove('playing');
  videoOf(take).pause();
});

element.addEventListener('click', (event) => {
  if (event.target.closest('.compare')) return;
  if (event.target.closest('.play-both')) { playBoth(); return; }
  if (event.target.closest('.close-compare')) { closeCompare(); return; }
  const take = event.target.closest('.take');
  if (take && !take.classList.contains('selected')) trigger('pick_take', { take_id: Number(take.dataset.takeId) });
});

element.addEventListener('change', (event) => {
  if (!event.target.classList.contains('pick-compare')) return;
  const ticked = Array.from(element.querySelectorAll('.pick-compare:checked'));
  if (ticked.length > 2) ticked[0].checked = false;
  const pair = Array.from(element.querySelectorAll('.pick-compare:checked')).map((box) => box.closest('.take'));
  const panel = element.querySelector('.comparison');
  if (pair.length !== 2) { panel.hidden = true; return; }
  const [left, right] = [panel.querySelector('.left'), panel.querySelector('.right')];
  left.src = videoOf(pair[0]).dataset.src;
  right.src = videoOf(pair[1]).dataset.src;
  panel.hidden = false;
});

function playBoth() {
  const panel = element.querySelector('.comparison');
  const [left, right] = [panel.querySelector('.left'), panel.querySelector('.right')];
  left.currentTime = 0;
  right.currentTime = 0;
  Promise.all([left.play(), right.play()]).catch(() => {});
}
function closeCompare() {
  element.querySelectorAll('.pick-compare:checked').forEach((box) => { box.checked = false; });
  const panel = element.querySelector('.comparison');
  panel.querySelectorAll('video').forEach((v) => v.pause());
  panel.hidden = true;
}
// Keep the right take on the left one's clock, so differences show at the same moment.
element.addEventListener('timeupdate', (event) => {
  if (!event.target.classList || !event.target.classList.contains('left')) return;
  const right = element.querySelector('.comparison .right');
  if (right && Math.abs(right.currentTime - event.target.currentTime) > 0.08) right.currentTime = event.target.currentTime;
}, true);
