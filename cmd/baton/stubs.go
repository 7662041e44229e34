package main

import "github.com/spf13/cobra"

func (c *cli) validateCommand() *cobra.Command { return &cobra.Command{Use: "validate"} }
func (c *cli) historyCommand() *cobra.Command  { return &cobra.Command{Use: "history"} }
func (c *cli) suspendCommand() *cobra.Command  { return &cobra.Command{Use: "suspend"} }
func (c *cli) resumeCommand() *cobra.Command   { return &cobra.Command{Use: "resume"} }
func (c *cli) syncCommand() *cobra.Command     { return &cobra.Command{Use: "sync"} }
func (c *cli) rollbackCommand() *cobra.Command { return &cobra.Command{Use: "rollback"} }
