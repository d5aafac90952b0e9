/*
 * Playback at the video's annotation fps. Each tick waits for the frame to be drawn (the
 * frame cache prefetches ahead), then schedules the next one so the rate holds on average.
 */

export class Player {
  /** @param {{fps: number, count: number, show: (i: number) => Promise<void>,
   *   current: () => number, onState: (playing: boolean) => void}} options */
  constructor({ fps, count, show, current, onState }) {
    this.fps = fps > 0 ? fps : 6;
    this.count = count;
    this.show = show;
    this.current = current;
    this.onState = onState;
    this.timer = null;
  }

  get playing() {
    return this.timer !== null;
  }

  play() {
    if (this.playing || this.count < 2) return;
    const interval = 1000 / this.fps;
    const tick = async () => {
      const started = performance.now();
      const next = this.current() + 1;
      if (next >= this.count) {
        this.pause();
        return;
      }
      await this.show(next);
      if (this.timer === null) return;
      this.timer = setTimeout(tick, Math.max(0, interval - (performance.now() - started)));
    };
    if (this.current() >= this.count - 1) this.show(0);
    this.timer = setTimeout(tick, interval);
    this.onState(true);
  }

  pause() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.onState(false);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }
}
