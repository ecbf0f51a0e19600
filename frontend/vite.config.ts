import { defineConfig } from "vite";

// The API serves the build from frontend/dist; `npm run dev` proxies /api to it.
export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 5000 },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
});
