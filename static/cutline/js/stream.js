// The run's WebSocket: connect, hand every frame to the model, reload the state over
// HTTP when the model finds a gap, notice a dead socket, reconnect by itself.
//
// Frames that arrive while state.json is loading are held and replayed after it, so
// the model sees them in order and drops those the new state already holds.

const REFUSED = new Set([4401, 4403, 4404]); // the server said no: reconnecting would not help
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class Stream {
  constructor({ socketPath, statePath, dispatch, getModel }) {
    this.socketPath = socketPath;
    this.statePath = statePath;
    this.dispatch = dispatch;
    this.getModel = getModel;
    this.socket = null;
    this.attempt = 0;
    this.reloading = false;
    this.held = [];
    this.refused = false;
    this.lastMessageAt = performance.now();
    this.watchdog = setInterval(() => this.checkAlive(), 1000);
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.socketPath}`;
  }

  connect() {
    this.dispatch({ type: "connection", status: "connecting" });
    const socket = (this.socket = new WebSocket(this.url()));
    socket.onopen = () => {
      this.lastMessageAt = performance.now();
    };
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      this.lastMessageAt = performance.now();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.receive(frame);
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (REFUSED.has(event.code)) {
        this.refused = true;
        this.dispatch({ type: "connection", status: "refused", code: event.code, message: event.reason || null });
        return;
      }
      const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt += 1;
      this.dispatch({
        type: "connection",
        status: "disconnected",
        code: event.code,
        message: `reconnecting in ${Math.round(delay / 100) / 10} s`,
      });
      setTimeout(() => this.connect(), delay);
    };
  }

  receive(frame) {
    frame.now = performance.now();
    frame.wallNow = Date.now() / 1000;
    if (frame.type === "state") {
      // Every connection starts with the state: whatever was held is older than it.
      this.held = [];
      this.attempt = 0;
      this.dispatch(frame);
      this.dispatch({ type: "connection", status: "live" });
      return;
    }
    if (this.reloading) {
      this.held.push(frame);
      return;
    }
    this.dispatch(frame);
    if (this.getModel().stream.reload) this.reload();
  }

  async reload() {
    if (this.reloading) return;
    this.reloading = true;
    this.dispatch({ type: "connection", status: "reloading", message: this.getModel().stream.reason });
    try {
      for (;;) {
        const response = await fetch(this.statePath, { credentials: "same-origin", cache: "no-store" });
        if (!response.ok) throw new Error(`state.json answered ${response.status}`);
        const state = await response.json();
        state.now = performance.now();
        this.dispatch(state);
        const held = this.held;
        this.held = [];
        for (const frame of held) this.dispatch(frame);
        if (!this.getModel().stream.reload) break;
      }
      this.dispatch({ type: "connection", status: this.socket ? "live" : "disconnected" });
    } catch (error) {
      // Start over from a fresh connection: its first frame is the state.
      if (this.socket) this.socket.close();
    } finally {
      this.reloading = false;
    }
  }

  checkAlive() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    const limit = 3 * (this.getModel().heartbeat || 5) * 1000;
    if (performance.now() - this.lastMessageAt > limit) this.socket.close(4000, "no heartbeat");
  }

  send(command) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      this.dispatch({ type: "error", message: "Not connected to the server: the command was not sent.", now: performance.now() });
      return false;
    }
    this.socket.send(JSON.stringify(command));
    return true;
  }
}
