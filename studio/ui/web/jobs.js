// The Jobs panel: cancel, retry and remove act on one job; and when a job finishes while this
// page is open, the browser says so even if the studio's tab is in the background (the
// Notification API, where the director allowed it on their first click in the page).
element.addEventListener('click', (event) => {
  const job = event.target.closest('.job');
  if (!job) return;
  const id = Number(job.dataset.renderId);
  if (event.target.closest('.cancel-job')) trigger('cancel_job', { render_id: id });
  else if (event.target.closest('.retry-job')) trigger('retry_job', { render_id: id });
  else if (event.target.closest('.remove-job')) trigger('remove_job', { render_id: id });
});

document.addEventListener('click', () => {
  if (window.Notification && Notification.permission === 'default') Notification.requestPermission();
}, { once: true });

let seen = null;  // finished job ids when the page first saw the list: those are old news
function announce() {
  const finished = (props.value && props.value.finished) || [];
  if (seen === null) { seen = new Set(finished); return; }
  for (const id of finished) {
    if (seen.has(id)) continue;
    seen.add(id);
    const job = (props.value.jobs || []).find((j) => j.id === id);
    // The record's strings are HTML-escaped for the template; a notification shows plain text.
    const plain = (s) => new DOMParser().parseFromString(s, 'text/html').documentElement.textContent;
    const text = job ? plain(job.title) + ': ' + job.status : 'Render ' + id + ' finished';
    window.holocineLastNotice = text;
    if (window.Notification && Notification.permission === 'granted') new Notification('HoloCine Studio', { body: text });
  }
}
announce();
watch('value', announce);
