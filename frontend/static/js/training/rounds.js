// Rounds page: while a round is queued or running, poll the project's rounds endpoint and show
// its progress and loss curve; reload the page once it ends (the history row then shows it).

const card = document.getElementById("active-round");
const POLL_MS = 2000;
const PAD = 6;

export function curvePoints(curve, width, height) {
  if (!curve || curve.length < 2) return "";
  const steps = curve.map((p) => p[0]);
  const losses = curve.map((p) => p[1]);
  const s0 = Math.min(...steps), s1 = Math.max(...steps);
  const l0 = Math.min(...losses), l1 = Math.max(...losses);
  const ds = s1 - s0 || 1, dl = l1 - l0 || 1;
  return curve
    .map(([s, l]) => {
      const x = PAD + ((s - s0) / ds) * (width - 2 * PAD);
      const y = PAD + (1 - (l - l0) / dl) * (height - 2 * PAD);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

async function poll() {
  const response = await fetch(card.dataset.url, { headers: { Accept: "application/json" } });
  if (!response.ok) return true;
  const data = await response.json();
  const active = data.active;
  if (!active) {
    window.location.reload();
    return false;
  }
  const status = document.getElementById("active-status");
  const message = document.getElementById("active-message");
  const progress = document.getElementById("active-progress");
  if (status) status.textContent = active.status;
  if (message) message.textContent = active.message;
  if (progress) progress.value = active.progress;
  const svg = document.getElementById("active-curve");
  const curve = active.round ? active.round.loss_curve : [];
  svg.style.display = "block";
  svg.querySelector("polyline").setAttribute(
    "points",
    curvePoints(curve, svg.width.baseVal.value, svg.height.baseVal.value),
  );
  return true;
}

async function loop() {
  let again = true;
  try {
    again = await poll();
  } catch (error) {
    console.warn("rounds poll failed", error);
  }
  if (again) setTimeout(loop, POLL_MS);
}

if (card && card.dataset.active === "1") loop();
